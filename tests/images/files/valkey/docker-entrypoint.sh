#!/bin/sh
# Entrypoint of the valkey test image, written for it after the contract of
# valkey-io/valkey-container@2a80026d51102f32b36b249542027cb11223a7f1:docker-entrypoint.sh (the
# template every version's image copies): flags or a *.conf first mean valkey-server; started as
# root, valkey-server gets the working directory and runs as valkey (setpriv); otherwise the working
# directory must be writable; a umask of 0022 becomes 0077; VALKEY_EXTRA_FLAGS is appended.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- valkey-server "$@"
fi

if [ "$1" = valkey-server ]; then
	if [ "$(id -u)" = 0 ]; then
		find . \! -user valkey -exec chown valkey '{}' +
		exec setpriv --reuid=valkey --regid=valkey --clear-groups -- "$0" "$@"
	elif [ ! -w . ]; then
		echo >&2 "error: directory is not writable by current user ($(id -u))"
		echo >&2 "  Check mount permissions or run as root to allow chown"
		exit 1
	fi
fi

if [ "$(umask)" = 0022 ]; then
	umask 0077
fi

# shellcheck disable=SC2086 (the extra flags are meant to be split into words)
exec "$@" $VALKEY_EXTRA_FLAGS
