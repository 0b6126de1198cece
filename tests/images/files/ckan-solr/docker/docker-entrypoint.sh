#!/usr/bin/env bash
# ENTRYPOINT of the ckan-solr test image, written for it after the contract of Solr 9.8's
# (apache/solr@a9e7506c618e392d357dd5cb636a0c8772e79fc5:solr/docker/scripts/docker-entrypoint.sh):
# it drops the build-time variables, defaults SOLR_PORT to 8983 unless it is a number, prepares
# /var/solr (init-var-solr), turns a first argument starting with `-` into `solr-foreground ARGS`,
# then runs the command.
set -e
unset SOLR_USER SOLR_UID SOLR_GROUP SOLR_GID \
    SOLR_CLOSER_URL SOLR_DIST_URL SOLR_ARCHIVE_URL SOLR_DOWNLOAD_URL SOLR_DOWNLOAD_SERVER SOLR_KEYS SOLR_SHA512
[[ "${VERBOSE:-}" == yes ]] && set -x
if ! [[ ${SOLR_PORT:-} =~ ^[0-9]+$ ]]; then
    export SOLR_PORT=8983
fi
init-var-solr
if [[ "${1:0:1}" == - ]]; then
    set -- solr-foreground "$@"
fi
exec "$@"
