#!/usr/bin/env bash
# docker-ensure-initdb.sh of the postgres test images, written for them after the contract of
# docker-library/postgres@ec0cb67f0f214ae5d93e5a2254974462a27f44a1:18/alpine3.23/docker-ensure-initdb.sh:
# the entrypoint's initialisation without starting the server afterwards, for init containers.
# Under this name an initialised PGDATA is left alone (exit 0); under docker-enforce-initdb.sh (a
# link to this file) it is an error (exit 1). Arguments are the server's, as for the entrypoint.
set -Eeuo pipefail
# shellcheck source=docker-entrypoint.sh
source /usr/local/bin/docker-entrypoint.sh

if [ "$#" -eq 0 ] || [ "$1" != postgres ]; then
	set -- postgres "$@"
fi
docker_setup_env
docker_create_db_directories
if [ "$(id -u)" = 0 ]; then
	exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi
if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
	docker_initialize_database "$@"
	exit 0
fi
self="$(basename "$0")"
case "$self" in
	docker-ensure-initdb.sh)
		echo >&2 "$self: note: database already initialized in '$PGDATA'!"
		;;
	docker-enforce-initdb.sh)
		echo >&2 "$self: error: (unexpected) database found in '$PGDATA'!"
		exit 1
		;;
	*)
		echo >&2 "$self: error: unknown file name: $self (docker-ensure-initdb.sh or docker-enforce-initdb.sh)"
		exit 99
		;;
esac
