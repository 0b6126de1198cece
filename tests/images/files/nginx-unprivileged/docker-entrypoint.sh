#!/bin/sh
# Entrypoint of the nginx-unprivileged test image, written for it after the contract of
# nginx/docker-nginx-unprivileged@c4edb2f:stable/alpine-slim/docker-entrypoint.sh: when the command
# is nginx (or nginx-debug), the files in /docker-entrypoint.d/ are taken in version order
# (executable *.envsh sourced, executable *.sh run, anything else skipped), then the command runs.
# NGINX_ENTRYPOINT_QUIET_LOGS silences the entrypoint's own lines.
set -e

say() {
    [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: $*"
}

case "${1:-}" in
    nginx | nginx-debug)
        scripts=$(find /docker-entrypoint.d/ -follow -type f 2>/dev/null | sort -V)
        if [ -z "$scripts" ]; then
            say "No files found in /docker-entrypoint.d/, skipping configuration"
        else
            for script in $scripts; do
                case "$script" in
                    *.envsh | *.sh)
                        if [ ! -x "$script" ]; then
                            say "Ignoring $script, not executable"
                        elif [ "${script%.envsh}" != "$script" ]; then
                            say "Sourcing $script"
                            . "$script"
                        else
                            say "Launching $script"
                            "$script"
                        fi
                        ;;
                    *) say "Ignoring $script" ;;
                esac
            done
            say "Configuration complete; ready for start up"
        fi
        ;;
esac

exec "$@"
