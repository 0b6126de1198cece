#!/bin/sh
# Entrypoint of the eclipse-mosquitto test image, written for it after the contract of
# eclipse-mosquitto/mosquitto@5b74cce:docker/2.0-openssl/docker-entrypoint.sh: started as root, it
# hands /mosquitto to the mosquitto user; then it runs the command.
set -e
if [ "$(id -u)" = 0 ] && [ -d /mosquitto ]; then
    chown -R mosquitto:mosquitto /mosquitto || true
fi
exec "$@"
