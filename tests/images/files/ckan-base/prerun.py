"""Start-up tasks of the ckan-base test image, written for it after the contract of
ckan/ckan-docker-base@77e892aada4209fced5bdfd9a8e1d32ae17e3fb3:ckan-2.11/setup/prerun.py (upstream's
text is not copied). Run from /srv/app as `python3 prerun.py`:

- MAINTENANCE_MODE=true (any case): nothing is done.
- Otherwise, in this order: wait for the database in CKAN_SQLALCHEMY_URL (skipped when unset);
  `ckan -c $CKAN_INI db init`; `ckan config-tool $CKAN_INI "ckan.plugins = $CKAN__PLUGINS"`;
  the same wait for CKAN_DATASTORE_WRITE_URL and, when set, the SQL of `ckan datastore
  set-permissions` run on it; wait for Solr's `$CKAN_SOLR_URL/schema/name?wt=json`; and with
  CKAN_SYSADMIN_NAME, CKAN_SYSADMIN_PASSWORD and CKAN_SYSADMIN_EMAIL all set, that user created
  and made sysadmin unless `ckan user show` finds it.
- A wait is 5 tries, 10 s after each failure; the fifth failure exits 1. `db init` failing with an
  OperationalError exits 1 after 5 s; any other failure of it raises.
- CKAN_INI defaults to /srv/app/ckan.ini.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psycopg2

INI = os.environ.get("CKAN_INI", "/srv/app/ckan.ini")
TRIES = 5
PAUSE = 10  # seconds after each failed try


def say(message):
    print(f"[prerun] {message}", flush=True)


def ckan(*args, **kwargs):
    return subprocess.run(["ckan", *args], **kwargs)


def wait_for(what, attempt):
    """Call `attempt` until it returns without an exception it names; exit 1 after TRIES failures."""
    for number in range(1, TRIES + 1):
        try:
            return attempt()
        except (psycopg2.Error, urllib.error.URLError) as error:
            say(f"{what} not reachable (try {number} of {TRIES}): {error}")
            time.sleep(PAUSE)
    say(f"{what}: giving up after {TRIES} tries")
    sys.exit(1)


def wait_for_database(variable):
    url = os.environ.get(variable)
    if not url:
        say(f"{variable} is not set: not waiting for that database")
        return
    wait_for(f"database ({variable})", lambda: psycopg2.connect(url).close())


def initialise_database():
    say("db init (creates or upgrades the schema)")
    result = ckan("-c", INI, "db", "init", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode == 0:
        say("db init done")
        return
    if "OperationalError" in result.stdout:
        say("the database is not ready; exiting")
        time.sleep(5)
        sys.exit(1)
    print(result.stdout, flush=True)
    result.check_returncode()


def set_plugins():
    plugins = os.environ.get("CKAN__PLUGINS", "")
    say(f"ckan.plugins in {INI}: {plugins}")
    ckan("config-tool", INI, f"ckan.plugins = {plugins}", check=True, capture_output=True)


def set_datastore_permissions():
    url = os.environ.get("CKAN_DATASTORE_WRITE_URL")
    if not url:
        say("CKAN_DATASTORE_WRITE_URL is not set: no DataStore set-up")
        return
    sql = ckan("-c", INI, "datastore", "set-permissions", stdout=subprocess.PIPE).stdout
    # psql's meta-command is not SQL; the connection already names the database.
    sql = re.sub(rb'\\connect "[^"]*"', b"", sql)
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
        connection.commit()
        for notice in connection.notices:
            print(notice, end="", flush=True)
        say("DataStore permissions set")
    except psycopg2.Error as error:
        say(f"could not set the DataStore permissions: {error}")
    finally:
        connection.close()


def check_solr():
    url = f"{os.environ.get('CKAN_SOLR_URL', '')}/schema/name?wt=json"

    def schema_name():
        with urllib.request.urlopen(url) as response:
            return json.load(response).get("name", "")

    name = wait_for("Solr", schema_name)
    say(
        "Solr answers with CKAN's schema" if "ckan" in name else f"Solr answers, but its schema is `{name}`, not CKAN's"
    )


def create_sysadmin():
    name, password, email = (os.environ.get(f"CKAN_SYSADMIN_{key}") for key in ("NAME", "PASSWORD", "EMAIL"))
    if not (name and password and email):
        return
    shown = ckan("-c", INI, "user", "show", name, stdout=subprocess.PIPE, check=True).stdout
    if b"User:None" not in re.sub(rb"\s", b"", shown):
        say(f"user {name} exists")
        return
    ckan("-c", INI, "user", "add", name, f"password={password}", f"email={email}")
    ckan("-c", INI, "sysadmin", "add", name)
    say(f"created sysadmin {name}")
    subprocess.run(["chown", "-R", "ckan:ckan-sys", f"{os.environ['CKAN_STORAGE_PATH']}/storage"])


def main():
    if os.environ.get("MAINTENANCE_MODE", "").lower() == "true":
        say("maintenance mode: nothing to do")
        return
    wait_for_database("CKAN_SQLALCHEMY_URL")
    initialise_database()
    set_plugins()
    wait_for_database("CKAN_DATASTORE_WRITE_URL")
    set_datastore_permissions()
    check_solr()
    create_sysadmin()


if __name__ == "__main__":
    main()
