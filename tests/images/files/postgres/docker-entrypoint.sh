#!/usr/bin/env bash
# Entrypoint of the postgres test images (docker.io/library/postgres:18.1-alpine and
# docker.io/postgis/postgis:18-3.6), written for them after the contract of the official image's
# script (docker-library/postgres@ec0cb67f0f214ae5d93e5a2254974462a27f44a1:18/alpine3.23/docker-entrypoint.sh,
# the same at 6edb0a8c4def40c371514b34aef9037ec82d9110:18/trixie/, the PostGIS image's base):
#  - `postgres ...`, or flags alone, starts the server after the steps below; any other command
#    (and `postgres --version` or `--help`) runs as given;
#  - POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB (default: the user) and
#    POSTGRES_INITDB_ARGS may each come from a file named by <NAME>_FILE, never both;
#    POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_WALDIR and PGDATA are read as they are;
#  - started as root, it creates PGDATA and /var/run/postgresql, gives them to postgres and runs
#    itself again as postgres (gosu);
#  - an empty PGDATA is initialised: initdb with the superuser's password (a uid without a passwd
#    entry gets one through nss_wrapper), `host all all all <auth>` appended to pg_hba.conf (auth:
#    POSTGRES_HOST_AUTH_METHOD or the server's password_encryption), then a server listening on the
#    Unix socket alone creates POSTGRES_DB and takes /docker-entrypoint-initdb.d/ in order (*.sh run
#    when executable, sourced otherwise; *.sql, *.sql.gz, *.sql.xz, *.sql.zst fed to psql), and stops;
#  - sourced, it only defines its functions, under upstream's names: docker-ensure-initdb.sh and
#    initdb.d scripts that call docker_process_sql or "${psql[@]}" work as with the official image.
set -Eeo pipefail

# The default PGDATA of the upstream image (18+ keeps data under a major-version folder).
IMAGE_PGDATA=/var/lib/postgresql/18/docker

# file_env NAME [DEFAULT]: export NAME from itself, from the file named by NAME_FILE, or DEFAULT.
file_env() {
	local name="$1" file_name="$1_FILE" value="${2:-}"
	if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
		echo >&2 "error: $name and $file_name are both set; set one of them"
		exit 1
	fi
	if [ -n "${!name:-}" ]; then
		value="${!name}"
	elif [ -n "${!file_name:-}" ]; then
		value="$(<"${!file_name}")"
	fi
	export "$name=$value"
	unset "$file_name"
}

docker_setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	declare -g DATABASE_ALREADY_EXISTS="${DATABASE_ALREADY_EXISTS:-}"
	declare -ag OLD_DATABASES=()
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	elif [ "$PGDATA" = "$IMAGE_PGDATA" ]; then
		# Data of an image before 18 (or of another major version) would be silently ignored.
		local dir
		for dir in /var/lib/postgresql /var/lib/postgresql/data /var/lib/postgresql/*/docker; do
			if [ -s "$dir/PG_VERSION" ]; then
				OLD_DATABASES+=("$dir")
			fi
		done
		if [ "${#OLD_DATABASES[@]}" -eq 0 ] && mountpoint -q /var/lib/postgresql/data; then
			OLD_DATABASES+=("/var/lib/postgresql/data (a mount nothing uses)")
		fi
	fi
}

docker_create_db_directories() {
	local uid
	uid="$(id -u)"
	mkdir -p "$PGDATA"
	# PostgreSQL refuses a data directory others can read; some volumes do not allow chmod.
	chmod 0700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 3775 /var/run/postgresql || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		if [ "$uid" = 0 ]; then
			find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
		fi
		chmod 0700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$uid" = 0 ]; then
		find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	fi
}

docker_init_database_dir() {
	local uid gid wrapper
	uid="$(id -u)"
	gid="$(id -g)"
	# initdb insists that the current uid has a passwd entry: lend it one for this command.
	if ! getent passwd "$uid" >/dev/null 2>&1; then
		for wrapper in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
			if [ -s "$wrapper" ]; then
				NSS_WRAPPER_PASSWD="$(mktemp)"
				NSS_WRAPPER_GROUP="$(mktemp)"
				export LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
				printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$gid" "$PGDATA" >"$NSS_WRAPPER_PASSWD"
				printf 'postgres:x:%s:\n' "$gid" >"$NSS_WRAPPER_GROUP"
				break
			fi
		done
	fi
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi
	# The password goes through a pipe, not the command line; initdb refuses an empty file, hence
	# the newline. POSTGRES_INITDB_ARGS is split as shell words.
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
	if [[ "${LD_PRELOAD:-}" == */libnss_wrapper.so ]]; then
		rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
		unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
	fi
}

docker_verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOF'
			Error: the database is not initialised and no superuser password is set.
			       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value, or
			       POSTGRES_HOST_AUTH_METHOD=trust to let every host in without a password
			       (not recommended).
		EOF
		exit 1
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		echo >&2 "WARNING: POSTGRES_HOST_AUTH_METHOD=trust lets every host that reaches the port in without a password."
	fi
}

docker_error_old_databases() {
	if [ "${#OLD_DATABASES[@]}" -gt 0 ]; then
		cat >&2 <<-EOF
			Error: PGDATA ($PGDATA) is empty, but there is PostgreSQL data in:
			         ${OLD_DATABASES[*]}
			       This image keeps data in a folder per major version under /var/lib/postgresql;
			       upgrade the old data with pg_upgrade, or point PGDATA at it.
		EOF
		exit 1
	fi
}

# docker_process_init_files FILE...: run the initialisation files by their extension.
docker_process_init_files() {
	psql=(docker_process_sql) # kept for scripts written for the official image
	echo
	local f
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					echo "$0: running $f"
					"$f"
				else
					echo "$0: sourcing $f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql) echo "$0: running $f" && docker_process_sql -f "$f" && echo ;;
			*.sql.gz) echo "$0: running $f" && gunzip -c "$f" | docker_process_sql && echo ;;
			*.sql.xz) echo "$0: running $f" && xzcat "$f" | docker_process_sql && echo ;;
			*.sql.zst) echo "$0: running $f" && zstd -dc "$f" | docker_process_sql && echo ;;
			*) echo "$0: ignoring $f" ;;
		esac
		echo
	done
}

# docker_process_sql [PSQL ARGUMENT...]: psql as POSTGRES_USER into POSTGRES_DB over the Unix socket.
docker_process_sql() {
	local runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ -n "$POSTGRES_DB" ]; then
		runner+=(--dbname "$POSTGRES_DB")
	fi
	PGHOST= PGHOSTADDR= "${runner[@]}" "$@"
}

docker_setup_db() {
	local found
	found="$(POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
	if [ -z "$found" ]; then
		POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
		echo
	fi
}

# pg_setup_hba_conf [postgres] [SERVER ARGUMENT...]: let every host in with a password.
pg_setup_hba_conf() {
	if [ "${1:-}" = postgres ]; then
		shift
	fi
	local auth
	auth="$(postgres -C password_encryption "$@")"
	: "${POSTGRES_HOST_AUTH_METHOD:=$auth}"
	{
		echo
		if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
			echo "# warning: trust lets every host in without a password"
		fi
		echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
}

# docker_temp_server_start [postgres] [SERVER ARGUMENT...]: a server on the Unix socket alone.
docker_temp_server_start() {
	if [ "${1:-}" = postgres ]; then
		shift
	fi
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	NOTIFY_SOCKET= PGUSER="${PGUSER:-$POSTGRES_USER}" \
		pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

docker_temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

# docker_initialize_database [postgres] [SERVER ARGUMENT...]: everything an empty PGDATA gets.
docker_initialize_database() {
	docker_verify_minimum_env
	docker_error_old_databases
	ls /docker-entrypoint-initdb.d/ >/dev/null # an unreadable folder fails here, not half-way
	docker_init_database_dir
	pg_setup_hba_conf "$@"
	# For psql, when POSTGRES_INITDB_ARGS makes local connections ask for a password.
	export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
	docker_temp_server_start "$@"
	docker_setup_db
	docker_process_init_files /docker-entrypoint-initdb.d/*
	docker_temp_server_stop
	unset PGPASSWORD
}

# _pg_want_help SERVER ARGUMENT...: true when postgres would only print something and exit.
_pg_want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?' | --help | --describe-config | -V | --version) return 0 ;;
		esac
	done
	return 1
}

_main() {
	if [ "${1:0:1}" = - ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = postgres ] && ! _pg_want_help "$@"; then
		docker_setup_env
		docker_create_db_directories
		if [ "$(id -u)" = 0 ]; then
			exec gosu postgres "${BASH_SOURCE[0]}" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_initialize_database "$@"
			printf '\nPostgreSQL init process complete; ready for start up.\n\n'
		else
			printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
		fi
	fi
	exec "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	_main "$@"
fi
