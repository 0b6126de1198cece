#!/bin/bash
# Command of the ckan-base test image (CMD, run from /srv/app), written for it after the contract of
# ckan/ckan-docker-base@77e892aada4209fced5bdfd9a8e1d32ae17e3fb3:ckan-2.11/setup/start_ckan.sh
# (upstream's text is not copied):
#  - a `datapusher` plugin in CKAN__PLUGINS gets a placeholder ckan.datapusher.api_token in $CKAN_INI;
#  - when a line of ./ckan.ini ends in an empty `SECRET_KEY =`, $CKAN_INI gets a random SECRET_KEY and
#    WTF_CSRF_SECRET_KEY and one random `string:` secret as api_token.jwt.encode.secret and
#    .decode.secret (upstream tests ./ckan.ini, the image's own, even when CKAN_INI names another);
#  - `python3 prerun.py`; then /docker-entrypoint.d/*: *.sh sourced, *.py run with python3, anything
#    else skipped;
#  - uWSGI with UWSGI_OPTS, by default the options below (UWSGI_HARAKIRI, default 60), plus
#    EXTRA_UWSGI_OPTS. As upstream, uWSGI starts even when prerun.py failed (upstream's exit-status
#    test looks at a later command), and it runs as this shell's child, not in its place.

if [[ $CKAN__PLUGINS == *datapusher* ]]; then
    echo "datapusher: a placeholder ckan.datapusher.api_token until one is made"
    ckan config-tool "$CKAN_INI" ckan.datapusher.api_token=xxx
fi

random_secret() {
    python3 -c 'import secrets; print(secrets.token_urlsafe())'
}

if grep -qE 'SECRET_KEY ?= ?$' ckan.ini; then
    echo "SECRET_KEY is empty: writing random secrets to $CKAN_INI"
    ckan config-tool "$CKAN_INI" "SECRET_KEY=$(random_secret)"
    ckan config-tool "$CKAN_INI" "WTF_CSRF_SECRET_KEY=$(random_secret)"
    jwt_secret="string:$(random_secret)"
    ckan config-tool "$CKAN_INI" "api_token.jwt.encode.secret=$jwt_secret"
    ckan config-tool "$CKAN_INI" "api_token.jwt.decode.secret=$jwt_secret"
fi

python3 prerun.py

for script in /docker-entrypoint.d/*; do
    [ -e "$script" ] || continue
    case "$script" in
        *.sh) echo "$0: sourcing $script"; . "$script" ;;
        *.py) echo "$0: running $script"; python3 "$script"; echo ;;
        *) echo "$0: skipping $script (neither .sh nor .py)" ;;
    esac
done

options="${UWSGI_OPTS:---socket /tmp/uwsgi.sock --wsgi-file /srv/app/wsgi.py --module wsgi:application \
--http [::]:5000 --master --enable-threads --lazy-apps -p 2 -L -b 32768 --vacuum \
--harakiri ${UWSGI_HARAKIRI:-60}}"
if [ -n "$EXTRA_UWSGI_OPTS" ]; then
    options="$options $EXTRA_UWSGI_OPTS"
fi
# shellcheck disable=SC2086 (the options are meant to be split into words)
uwsgi $options
