"""The databases' set-up step (charts/_lib/postgres/, charts/_lib/mongo/): every application logs in
with a role of its own and the superuser only administers. The PostgreSQL files run for real against a
throwaway cluster this module starts as an unprivileged user; mongosh's API is stood in for (no
MongoDB server is available to the tests)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from mims import paths
from mims.blueprint import load_blueprint
from tests.conftest import env_of, find, merge, require_tool

SCORPIO = {"components": {"broker": {"implementation": "scorpio"}}}


def set_up_files(rendering, workload: str, namespace: str) -> dict[str, str]:
    return find(rendering, "ConfigMap", f"{workload}-set-up", namespace)["data"]


# --- PostgreSQL: the rendered set-up against a real server ------------------------------------------


def missing(what: str):
    """scripts/test installs PostgreSQL and PostGIS: in CI their absence fails, elsewhere it skips."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; scripts/test installs it")
    pytest.skip(f"{what} is not installed (scripts/test installs it)")


def postgres_bin() -> Path:
    """Folder of initdb, pg_ctl, postgres and psql (Debian keeps them out of PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = found[-1] if found else (Path(shutil.which("initdb")) if shutil.which("initdb") else None)
    if initdb is None:
        missing("PostgreSQL")
    return initdb.parent


def require_postgis(bin_dir: Path) -> None:
    sharedir = subprocess.run(
        [bin_dir / "pg_config", "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not (Path(sharedir) / "extension" / "postgis.control").exists():
        missing("PostGIS")


class Cluster:
    """A PostgreSQL cluster in a temporary folder, run by an unprivileged user (PostgreSQL refuses
    root), laid out as in the pod: the rendered set-up files, the two password files, and a stand-in
    for the image's docker-ensure-initdb.sh that initialises an empty PGDATA as the image does."""

    def __init__(
        self,
        root: Path,
        files: dict[str, str],
        database: str,
        superuser_password: str,
        app_password: str,
        initdb_sql: str = "",
    ):
        self.root, self.database = root, database
        self.bin = postgres_bin()
        self.user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        self.port = _free_port()
        for folder in ("set-up", "secrets", "run", "stand-in"):
            (root / folder).mkdir()
        for name, text in files.items():
            (root / "set-up" / name).write_text(text)
        self.superuser_file = root / "secrets" / "superuser"
        self.app_file = root / "secrets" / "app"
        self.set_passwords(superuser_password, app_password)
        (root / "initdb.sql").write_text(initdb_sql)
        ensure = root / "stand-in" / "docker-ensure-initdb.sh"
        ensure.write_text(ENSURE_INITDB)
        ensure.chmod(0o755)
        if self.user:
            for path in [root, *root.rglob("*")]:
                os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def set_passwords(self, superuser: str, app: str) -> None:
        self.superuser_password, self.app_password = superuser, app
        self.superuser_file.write_text(superuser)
        self.app_file.write_text(app)
        if self.user:
            for path in (self.superuser_file, self.app_file):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.root / 'stand-in'}:{self.bin}:/usr/bin:/bin",
            "HOME": str(self.root),
            "LC_ALL": "C.UTF-8",
            "PGDATA": str(self.pgdata),
            "PGHOST": str(self.root / "run"),
            "PGPORT": str(self.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": self.database,
            "POSTGRES_PASSWORD_FILE": str(self.superuser_file),
            "APP_PASSWORD_FILE": str(self.app_file),
            "INITDB_SQL": str(self.root / "initdb.sql"),
            **extra,
        }

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []} if self.user else {}
        result = subprocess.run(
            args, env=self.env(**env), cwd=self.root, capture_output=True, text=True, timeout=120, check=False, **kwargs
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def set_up(self) -> str:
        """The init container's command; returns everything it printed."""
        result = self.run("bash", str(self.root / "set-up" / "set-up.sh"))
        return result.stdout + result.stderr

    def initdb_as(self, superuser: str, password_file: Path) -> None:
        """A cluster initialised the way an older chart did it: the application's name as superuser."""
        self.run(
            "initdb",
            "--username",
            superuser,
            "--pwfile",
            str(password_file),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--pgdata",
            str(self.pgdata),
        )
        self.start(tcp=False)
        self.sql(f'CREATE DATABASE "{self.database}"', user=superuser, database="postgres")

    def start(self, tcp: bool = True) -> None:
        listen = "-c listen_addresses=127.0.0.1" if tcp else "-c listen_addresses=''"
        self.run(
            "pg_ctl",
            "--pgdata",
            str(self.pgdata),
            "--wait",
            "--silent",
            "--log",
            str(self.root / "server.log"),
            "--options",
            f"{listen} -c unix_socket_directories='{self.root / 'run'}'",
            "start",
        )

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self.run("pg_ctl", "--pgdata", str(self.pgdata), "--wait", "--silent", "--mode", "fast", "stop")

    def sql(self, statement: str, user: str = "postgres", database: str | None = None) -> str:
        """Over the Unix socket, which the cluster trusts (as the image's initdb does)."""
        return self.run(
            "psql",
            "--no-psqlrc",
            "--set",
            "ON_ERROR_STOP=1",
            "--tuples-only",
            "--no-align",
            "--username",
            user,
            "--dbname",
            database or self.database,
            "--command",
            statement,
        ).stdout.strip()

    def login(
        self, user: str, password: str, statement: str, database: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Over TCP with a password, as the application does."""
        return self.run(
            "psql",
            "--no-psqlrc",
            "--set",
            "ON_ERROR_STOP=1",
            "--tuples-only",
            "--no-align",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--username",
            user,
            "--dbname",
            database or self.database,
            "--command",
            statement,
            check=check,
            PGPASSWORD=password,
        )


# Stands in for docker-library/postgres 18/*/docker-ensure-initdb.sh: on an empty PGDATA, initdb with
# POSTGRES_USER and the password file (local connections trusted, as the image's initdb leaves them),
# CREATE DATABASE POSTGRES_DB, then the image's /docker-entrypoint-initdb.d (here INITDB_SQL).
ENSURE_INITDB = """#!/usr/bin/env bash
set -Eeuo pipefail
[ -s "$PGDATA/PG_VERSION" ] && exit 0
initdb --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=trust \\
  --auth-host=scram-sha-256 --pgdata="$PGDATA" >/dev/null
pg_ctl --pgdata="$PGDATA" --wait --silent --options "-c listen_addresses='' -c unix_socket_directories='$PGHOST'" start
psql --no-psqlrc -v ON_ERROR_STOP=1 --quiet --username "$POSTGRES_USER" --dbname postgres \\
  --command "CREATE DATABASE \\"$POSTGRES_DB\\""
psql --no-psqlrc -v ON_ERROR_STOP=1 --quiet --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --file "$INITDB_SQL"
pg_ctl --pgdata="$PGDATA" --wait --silent --mode fast stop
"""

# What the PostGIS image's initdb-postgis.sh does in the application's database (postgis/docker-postgis).
POSTGIS_INITDB = "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS postgis_topology;"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    """Make a Cluster for rendered files; stops the server and removes the folder afterwards."""
    made = []

    def make(files: dict[str, str], database: str, **kwargs) -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="mims-pg-"))
        made.append(
            Cluster(
                root, files, database, "Superuser0pass0word0from0file000", "App0pass0word0from0its0own0file0", **kwargs
            )
        )
        return made[-1]

    yield make
    for c in made:
        c.stop()
        shutil.rmtree(c.root, ignore_errors=True)


@pytest.fixture(scope="module")
def small_city(rendered_examples):
    return rendered_examples["small-city"]


@pytest.fixture(scope="module")
def keycloak_files(small_city):
    return set_up_files(small_city, "keycloak-db", "alderbrook-iam")


@pytest.fixture(scope="module")
def scorpio_rendering(renderer, tmp_path_factory):
    examples = paths.blueprints_dir() / "examples"
    path = tmp_path_factory.mktemp("scorpio") / "blueprint.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load((examples / "small-city.yaml").read_text()), SCORPIO)))
    (path.parent / "algorithms").symlink_to(examples / "algorithms")
    return renderer.render(load_blueprint(path))


def role(c: Cluster, name: str) -> str:
    return c.sql(
        f"SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin "
        f"FROM pg_roles WHERE rolname = '{name}'"
    )


def test_fresh_volume_gets_a_superuser_and_an_application_role_that_owns_its_database(cluster, keycloak_files):
    c = cluster(keycloak_files, "keycloak")
    output = c.set_up()
    c.start()
    assert role(c, "postgres") == "t|t|t|t|t|t"
    assert role(c, "keycloak") == "f|f|f|f|f|t"  # LOGIN and nothing else
    assert c.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'keycloak'") == "keycloak"
    assert c.login("keycloak", c.app_password, "SELECT current_user").stdout.strip() == "keycloak"
    assert c.login("postgres", c.superuser_password, "SELECT current_user").stdout.strip() == "postgres"
    assert c.login("keycloak", c.superuser_password, "SELECT 1", check=False).returncode != 0
    # What Keycloak's Liquibase does at first start: create its tables in its own database.
    c.login("keycloak", c.app_password, "CREATE TABLE databasechangelog (id varchar(255))")
    assert c.superuser_password not in output and c.app_password not in output


def test_volume_of_an_older_chart_is_converged_the_superuser_renamed_and_the_objects_handed_over(
    cluster, keycloak_files
):
    c = cluster(keycloak_files, "keycloak")
    c.initdb_as("keycloak", c.app_file)  # the application's name and password were the superuser's
    c.sql(
        "CREATE TYPE realm_state AS ENUM ('on', 'off'); CREATE DOMAIN short_text AS varchar(36);"
        "CREATE TABLE realm (id serial PRIMARY KEY, name short_text, state realm_state);"
        "CREATE SEQUENCE hibernate_sequence; CREATE VIEW realm_names AS SELECT name FROM realm;"
        "CREATE FUNCTION realm_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM realm';"
        "CREATE SCHEMA extra; CREATE TABLE extra.note (id int GENERATED ALWAYS AS IDENTITY);"
        "CREATE TABLE event (id int) PARTITION BY RANGE (id);"
        "CREATE TABLE event_1 PARTITION OF event FOR VALUES FROM (0) TO (100)",
        user="keycloak",
    )
    c.stop()
    output = c.set_up()
    c.start()
    assert c.sql("SELECT rolname FROM pg_roles WHERE oid = 10") == "postgres"
    assert role(c, "keycloak") == "f|f|f|f|f|t"
    assert c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'mims_set_up'") == "0"
    owned_by_superuser = c.sql(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relowner = 10 AND n.nspname IN ('public', 'extra')"
    )
    assert owned_by_superuser == "0"
    # The application's migrations alter what it made before, with its own password (unchanged).
    c.login(
        "keycloak",
        c.app_password,
        "ALTER TABLE realm ADD COLUMN display text; ALTER TYPE realm_state ADD VALUE 'paused';"
        "ALTER DOMAIN short_text SET DEFAULT ''; ALTER SEQUENCE hibernate_sequence RESTART;"
        "CREATE OR REPLACE VIEW realm_names AS SELECT name, display FROM realm;"
        "ALTER FUNCTION realm_count() RENAME TO realms; ALTER TABLE extra.note ADD COLUMN t text;"
        "ALTER TABLE event_1 SET (fillfactor = 90); ALTER TABLE event ADD COLUMN u text;"
        "INSERT INTO realm (name) VALUES ('city')",
    )
    assert c.login("postgres", c.superuser_password, "SELECT 1").stdout.strip() == "1"
    assert c.superuser_password not in output and c.app_password not in output


def test_set_up_runs_at_every_start_and_follows_a_changed_secret(cluster, keycloak_files):
    c = cluster(keycloak_files, "keycloak")
    c.set_up()
    c.start(tcp=False)
    c.sql("ALTER ROLE keycloak SUPERUSER")  # drift the set-up must undo
    c.set_passwords("Another0superuser0password000000", "Another0app0password000000000000")
    c.stop()
    c.set_up()
    c.start()
    assert role(c, "keycloak") == "f|f|f|f|f|t"
    assert c.login("keycloak", "Another0app0password000000000000", "SELECT 1").stdout.strip() == "1"
    assert c.login("postgres", "Another0superuser0password000000", "SELECT 1").stdout.strip() == "1"


def test_scorpio_creates_tenant_databases_with_postgis_without_being_superuser(cluster, scorpio_rendering):
    c = cluster(set_up_files(scorpio_rendering, "broker-db", "alderbrook-broker"), "scorpio", initdb_sql=POSTGIS_INITDB)
    require_postgis(c.bin)
    c.set_up()
    c.start()
    assert role(c, "scorpio") == "f|t|f|f|f|t"  # LOGIN and CREATEDB
    # Scorpio's ClientManager for a new NGSI-LD tenant, then its first Flyway migration there.
    c.login("scorpio", c.app_password, 'CREATE DATABASE "ngb-1497276617"')
    c.login(
        "scorpio",
        c.app_password,
        "CREATE EXTENSION IF NOT EXISTS postgis;"
        "CREATE TABLE entity (id text PRIMARY KEY, location geometry(Geometry, 4326))",
        database="ngb-1497276617",
    )
    refused = c.login(
        "scorpio", c.app_password, "CREATE EXTENSION postgis_topology", database="ngb-1497276617", check=False
    )
    assert "permission denied" in refused.stderr  # an extension that is not in template1 stays refused


def test_scorpio_tenant_databases_of_an_older_chart_pass_to_scorpio(cluster, scorpio_rendering):
    c = cluster(set_up_files(scorpio_rendering, "broker-db", "alderbrook-broker"), "scorpio")
    require_postgis(c.bin)
    c.initdb_as("scorpio", c.app_file)
    c.sql(POSTGIS_INITDB, user="scorpio")
    c.sql('CREATE DATABASE "ngbopeniot"', user="scorpio")
    c.sql(
        "CREATE EXTENSION postgis; CREATE TABLE entity (id text, location geometry)",
        user="scorpio",
        database="ngbopeniot",
    )
    c.stop()
    c.set_up()
    c.start()
    assert c.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'ngbopeniot'") == "scorpio"
    assert (
        c.sql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'entity'", database="ngbopeniot")
        == "scorpio"
    )
    # PostGIS's own objects stay with the superuser.
    assert (
        c.sql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'spatial_ref_sys'", database="ngbopeniot")
        == "postgres"
    )
    c.login("scorpio", c.app_password, "ALTER TABLE entity ADD COLUMN type text", database="ngbopeniot")


# --- MongoDB: the rendered set-up against stand-ins for mongod and mongosh ---------------------------

# mongod: records its arguments; `--shutdown` stops the running one.
MONGOD = """#!/usr/bin/env bash
echo "$*" >> "$STAND_IN/mongod.args"
if [[ " $* " == *" --shutdown "* ]]; then kill "$(cat "$STAND_IN/mongod.pid")"; exit 0; fi
echo $$ > "$STAND_IN/mongod.pid"
exec sleep 600
"""

# mongosh: `--eval` answers the readiness check; a file runs with a `db` whose users and roles persist
# in state.json and behave as MongoDB's user management commands do (create fails on an existing
# name, update on a missing one; update replaces the fields it is given).
MONGOSH = """#!/usr/bin/env node
const fs = require("fs"), vm = require("vm"), path = require("path");
const args = process.argv.slice(2);
if (args.includes("--eval")) process.exit(0);
const stateFile = path.join(process.env.STAND_IN, "state.json");
const state = fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, "utf8")) : {users: {}, roles: {}};
function collection(kind, key) {
  return {
    get: (name) => state[kind][name] || null,
    create: (doc) => { if (state[kind][doc[key]]) throw new Error(`${doc[key]} exists`);
                       const {[key]: name, ...rest} = doc; state[kind][name] = rest; },
    update: (name, doc) => { if (!state[kind][name]) throw new Error(`no ${name}`);
                             Object.assign(state[kind][name], doc); },
  };
}
const users = collection("users", "user"), roles = collection("roles", "role");
const admin = {getUser: users.get, createUser: users.create, updateUser: users.update,
               getRole: roles.get, createRole: roles.create, updateRole: roles.update};
const db = {getSiblingDB: (name) => { if (name !== "admin") throw new Error(name); return admin; }};
const file = args[args.length - 1];
vm.runInNewContext(fs.readFileSync(file, "utf8"), {db, require, process}, {filename: file});
fs.writeFileSync(stateFile, JSON.stringify(state));
"""


class Mongo:
    """The pod's layout for the MongoDB set-up, with the stand-ins first on PATH."""

    def __init__(self, root: Path, files: dict[str, str]):
        self.root = root
        for folder in ("set-up", "secrets", "stand-in"):
            (root / folder).mkdir()
        for name, text in files.items():
            (root / "set-up" / name).write_text(text)
        for name, text in (("mongod", MONGOD), ("mongosh", MONGOSH)):
            (root / "stand-in" / name).write_text(text)
            (root / "stand-in" / name).chmod(0o755)
        self.node = Path(require_tool("node")).parent

    def set_up(self, superuser_password: str, app_password: str) -> str:
        (self.root / "secrets" / "superuser").write_text(superuser_password)
        (self.root / "secrets" / "app").write_text(app_password)
        env = {
            "PATH": f"{self.root / 'stand-in'}:{self.node}:/usr/bin:/bin",
            "STAND_IN": str(self.root / "stand-in"),
            "SUPERUSER_PASSWORD_FILE": str(self.root / "secrets" / "superuser"),
            "APP_PASSWORD_FILE": str(self.root / "secrets" / "app"),
            "HOME": str(self.root),
        }
        result = subprocess.run(
            ["bash", str(self.root / "set-up" / "set-up.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    @property
    def state(self) -> dict:
        return json.loads((self.root / "stand-in" / "state.json").read_text())

    @state.setter
    def state(self, value: dict) -> None:
        (self.root / "stand-in" / "state.json").write_text(json.dumps(value))

    @property
    def mongod_runs(self) -> list[list[str]]:
        return [line.split() for line in (self.root / "stand-in" / "mongod.args").read_text().splitlines()]


@pytest.fixture
def mongo(tmp_path):
    def make(rendering, workload: str, namespace: str) -> Mongo:
        return Mongo(tmp_path, set_up_files(rendering, workload, namespace))

    return make


ORION_PRIVILEGES = [
    {
        "resource": {"db": "", "collection": ""},
        "actions": ["find", "insert", "update", "remove", "createCollection", "createIndex"],
    },
    {"resource": {"cluster": True}, "actions": ["listDatabases"]},
]


def test_mongo_set_up_runs_its_own_mongod_without_network_or_access_control(mongo, small_city):
    m = mongo(small_city, "broker-db", "alderbrook-broker")
    m.set_up("Superuser0pass0word0from0file000", "App0pass0word0from0its0own0file0")
    start, stop = m.mongod_runs
    assert start[:6] == ["--dbpath", "/data/db", "--bind_ip", "127.0.0.1", "--port", "27017"]
    assert "--auth" not in start and "--bind_ip_all" not in start
    assert stop == ["--dbpath", "/data/db", "--shutdown"]


def test_orion_ld_gets_a_user_with_its_custom_role_and_root_its_own_password(mongo, small_city):
    m = mongo(small_city, "broker-db", "alderbrook-broker")
    output = m.set_up("Superuser0pass0word0from0file000", "App0pass0word0from0its0own0file0")
    assert m.state == {
        "users": {
            "root": {"pwd": "Superuser0pass0word0from0file000", "roles": [{"role": "root", "db": "admin"}]},
            "orionld": {"pwd": "App0pass0word0from0its0own0file0", "roles": [{"role": "orionld", "db": "admin"}]},
        },
        "roles": {"orionld": {"privileges": ORION_PRIVILEGES, "roles": []}},
    }
    assert "Superuser0pass" not in output and "App0pass" not in output


def test_iot_agent_may_read_and_write_its_own_database_only(mongo, small_city):
    m = mongo(small_city, "ingestion-db", "alderbrook-ingestion")
    m.set_up("Superuser0pass0word0from0file000", "App0pass0word0from0its0own0file0")
    assert m.state["users"]["iotagent"]["roles"] == [{"role": "readWrite", "db": "iotagentjson"}]
    assert m.state["roles"] == {}


def test_mongo_volume_of_an_older_chart_converges_and_set_up_follows_the_secrets(mongo, small_city):
    m = mongo(small_city, "broker-db", "alderbrook-broker")
    # An older chart: only `root`, whose password was the one the application now has.
    m.state = {
        "users": {"root": {"pwd": "App0pass0word0from0its0own0file0", "roles": [{"role": "root", "db": "admin"}]}},
        "roles": {},
    }
    m.set_up("Superuser0pass0word0from0file000", "App0pass0word0from0its0own0file0")
    assert m.state["users"]["root"]["pwd"] == "Superuser0pass0word0from0file000"
    assert m.state["users"]["orionld"]["roles"] == [{"role": "orionld", "db": "admin"}]
    m.set_up("Another0superuser0password000000", "Another0app0password000000000000")
    assert m.state["users"]["root"]["pwd"] == "Another0superuser0password000000"
    assert m.state["users"]["orionld"]["pwd"] == "Another0app0password000000000000"
    assert m.state["roles"]["orionld"]["privileges"] == ORION_PRIVILEGES


# --- What the applications get --------------------------------------------------------------------


def test_applications_log_in_as_their_own_users(small_city, scorpio_rendering):
    def container(rendering, kind, name, namespace):
        return find(rendering, kind, name, namespace)["spec"]["template"]["spec"]["containers"][0]

    orion = container(small_city, "Deployment", "orion-ld", "alderbrook-broker")
    assert env_of(orion)["ORIONLD_MONGO_USER"] == "orionld"
    agent = container(small_city, "Deployment", "iot-agent", "alderbrook-ingestion")
    assert "mongodb://iotagent:${db_password}@" in agent["command"][2]
    assert "/iotagentjson?authSource=admin" in agent["command"][2]
    keycloak = container(small_city, "Deployment", "keycloak", "alderbrook-iam")
    assert env_of(keycloak)["KC_DB_USERNAME"] == "keycloak"
    scorpio = container(scorpio_rendering, "Deployment", "scorpio", "alderbrook-broker")
    assert env_of(scorpio)["DBUSER"] == "scorpio"
    for rendering, workload, namespace, user in (
        (small_city, "keycloak-db", "alderbrook-iam", "keycloak"),
        (small_city, "catalogue-db", "alderbrook-catalogue", "ckan"),
        (scorpio_rendering, "broker-db", "alderbrook-broker", "scorpio"),
    ):
        assert f"\\set app_role '{user}'" in set_up_files(rendering, workload, namespace)["roles.sql"]
