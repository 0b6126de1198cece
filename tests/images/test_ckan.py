"""The CKAN test image run as charts/ckan runs it: the pod's uid 10503 (not the image's 503) on a
read-only root, the volumes where the rendered containers mount them: the ConfigMaps (ini, scripts,
ckanext-dcat's wheels) and made-up secrets as read-only folders, emptyDirs as folders or tmpfs.
One test runs the image's own command instead, as upstream's image is run without the chart.

Marked `images`. Containers run by `ctr` share no network, so CKAN reaches a PostgreSQL test
container (database and user `ckan`, as the chart's catalogue-db) through its Unix socket in a
folder both mount: ckan-env.sh's CKAN_SQLALCHEMY_URL is changed to name that socket (CKAN's command
line connects to the database whenever it loads its configuration). Solr and Valkey are not run:
CKAN logs them unreachable and goes on, and prerun.py's Solr check is answered by a file server in
the CKAN container."""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
from pathlib import Path

import pytest

from tests.conftest import env_of, find
from tests.images.containerd import Containerd, bind, tmpfs
from tests.images.recipe import load_recipe

pytestmark = pytest.mark.images

POD_USER = "10503:10503"  # runAsUser, runAsGroup and fsGroup of charts/ckan
IMAGE = load_recipe("ckan-base").config
DB_PASSWORD = "db-secret"  # a throwaway database's
# Secrets the pod mounts (volume name -> Secret keys), filled with made-up values.
SECRETS = {
    "credentials": ["secret-key", "sysadmin-password"],
    "db-credentials": ["password"],
    "valkey-credentials": ["password"],
}
DATABASE_HOST = "@catalogue-db:5432/ckan"
# The chart's server command ends in this; the start test runs the script in the background instead.
SERVE = "exec uwsgi"
READY_WITHIN = 240  # seconds; the chart's startup probe allows 600
SOLR_URL = "http://127.0.0.1:8983/solr/ckan"  # the file server standing in for Solr's schema API


def _folder(path: Path, owner: int = 0, mode: int = 0o755) -> Path:
    path.mkdir(mode=mode)
    os.chown(path, owner, owner)
    path.chmod(mode)
    return path


class Pod:
    """The rendered CKAN pod of the small-city example, its volumes as folders under `root`."""

    def __init__(self, rendering, root: Path):
        statefulset = find(rendering, "StatefulSet", "ckan")["spec"]
        spec = statefulset["template"]["spec"]
        assert spec["securityContext"]["runAsUser"] == int(POD_USER.split(":")[0]), "update POD_USER"
        (self.init,) = spec["initContainers"]
        (self.server,) = spec["containers"]
        owner = int(POD_USER.split(":")[0])
        config = _folder(root / "config")
        for name, text in find(rendering, "ConfigMap", "ckan-config")["data"].items():
            (config / name).write_text(text)
        wheels = _folder(root / "wheels")
        for obj in rendering.objects():
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("ckan-wheel-"):
                for name, data in obj["binaryData"].items():
                    (wheels / name).write_bytes(base64.b64decode(data))
        # Volume name -> host folder; None: an emptyDir that starts empty in each container (tmpfs).
        self.volumes: dict[str, Path | None] = {
            "config": config,
            "wheels": wheels,
            "extensions": _folder(root / "extensions", owner=owner),
            "data": _folder(root / "data", owner=owner),
            "run": None,
            "tmp": None,
        }
        for volume, keys in SECRETS.items():
            folder = self.volumes[volume] = _folder(root / volume)
            for key in keys:
                (folder / key).write_text(DB_PASSWORD if volume == "db-credentials" else f"made-up {key}")
        claims = [claim["metadata"]["name"] for claim in statefulset["volumeClaimTemplates"]]
        assert {v["name"] for v in spec["volumes"]} | set(claims) == set(self.volumes), "the pod's volumes changed"
        self.config = config
        self.extensions = self.volumes["extensions"]
        self.database: list[str] = []

    def use_database(self, socket: Path) -> None:
        """Point CKAN at the PostgreSQL whose Unix socket is in `socket`, mounted at /run/postgresql in
        the server container."""
        env_file = self.config / "ckan-env.sh"
        rendered = env_file.read_text()
        assert DATABASE_HOST in rendered, "ckan-env.sh changed its database URL; update this test"
        env_file.write_text(rendered.replace(DATABASE_HOST, "@/ckan?host=/run/postgresql"))
        self.database = [bind(socket, "/run/postgresql")]

    def run(self, containerd: Containerd, image: str, container: dict, *command: str, env=None, **kwargs):
        """`command` in `container` with its mounts, as the pod's user on a read-only root, with the
        image's environment under the container's own and `env` over both."""
        mounts = list(self.database) if container is self.server else []
        for mount in container["volumeMounts"]:
            source = self.volumes[mount["name"]]
            path = mount["mountPath"]
            mounts.append(tmpfs(path) if source is None else bind(source, path, mount.get("readOnly", False)))
        return containerd.run_as(
            image,
            POD_USER,
            *command,
            env={**IMAGE.env, **env_of(container), **(env or {})},
            workdir=IMAGE.workdir,
            mounts=mounts,
            read_only=True,
            **kwargs,
        )

    def install_extensions(self, containerd: Containerd, image: str) -> str:
        return self.run(containerd, image, self.init, *self.init["command"]).stdout


@pytest.fixture
def pod(rendered_examples, tmp_path: Path) -> Pod:
    return Pod(rendered_examples["small-city"], tmp_path)


@pytest.fixture(scope="module")
def postgres(containerd: Containerd, image, tmp_path_factory):
    """PostgreSQL as the charts run it (uid 10999, read-only root) for this module's tests, in a
    thread; yields the folder with its Unix socket. Besides the database `ckan` it has the DataStore
    database and read-only user that the image's default plugin `datastore` needs. It stops when
    `stop` appears in the socket folder (at the latest after 15 minutes)."""
    folder = tmp_path_factory.mktemp("postgres")
    socket = _folder(folder / "socket", mode=0o1777)
    initdb = _folder(folder / "initdb")
    (initdb / "datastore.sql").write_text(
        f"CREATE ROLE datastore_ro LOGIN PASSWORD '{DB_PASSWORD}';\nCREATE DATABASE datastore OWNER ckan;\n"
    )
    script = """
docker-entrypoint.sh postgres >/tmp/log 2>&1 &
server=$!
for _ in $(seq 900); do [ -e /var/run/postgresql/stop ] && break; sleep 1; done
kill -INT $server; wait
"""
    run = functools.partial(
        containerd.run,
        image("postgres"),
        "/bin/sh",
        "-c",
        script,
        user="10999:10999",
        env={"POSTGRES_USER": "ckan", "POSTGRES_PASSWORD": DB_PASSWORD, "POSTGRES_DB": "ckan"},
        mounts=[
            tmpfs("/var/lib/postgresql"),
            bind(socket, "/var/run/postgresql", read_only=False),
            bind(initdb, "/docker-entrypoint-initdb.d"),
            tmpfs("/tmp"),
        ],
        read_only=True,
        check=False,
        timeout=960,
    )
    server = threading.Thread(target=run)
    server.start()
    yield socket
    (socket / "stop").touch()
    server.join(timeout=60)


def test_ckan_base_has_the_upstream_layout_on_python_3_11(containerd: Containerd, image):
    script = """id -un; id -gn; pwd; echo $(ls /srv/app); stat -c '%U:%G' /var/lib/ckan /srv/app/ckan.ini
python3 --version; python3 -c 'import ckan; print("CKAN", ckan.__version__)'; uwsgi --version
python3 -m pip --version | cut -d' ' -f1-2"""
    result = containerd.run(image("ckan-base"), "/bin/sh", "-c", script, read_only=True)
    assert result.stdout.splitlines() == [
        "ckan",
        "ckan-sys",
        "/srv/app",
        "ckan.ini prerun.py src start_ckan.sh wsgi.py",
        "ckan:ckan-sys",
        "ckan:ckan-sys",
        "Python 3.11.2",
        "CKAN 2.11.6",
        "2.0.31",
        "pip 26.3",
    ]


def test_the_init_container_installs_ckanext_dcat_as_the_pod_user(containerd: Containerd, image, pod: Pod):
    """From the chart's wheels into the user site, offline and hash-checked; a second run (a
    restarted pod keeps the emptyDir) finds it installed."""
    output = pod.install_extensions(containerd, image("ckan-base"))
    assert "ckanext-dcat and the mims profile importable" in output
    site = pod.extensions / "lib/python3.11/site-packages"
    assert (site / "ckanext/dcat/plugins/__init__.py").is_file() and (site / "mims_dcat.py").is_file()
    assert "ckanext-dcat 2.4.4 is already installed" in pod.install_extensions(containerd, image("ckan-base"))


def test_ckans_command_line_loads_the_charts_plugins(containerd: Containerd, image, pod: Pod, postgres: Path):
    """With the chart's ini copy (start-ckan.sh's first steps) and the user site read-only:
    prerun.py's `ckan config-tool`, `ckanext` importable from both site folders, and the
    operators' `ckan-cli.sh --help`, which loads every plugin of ckan.plugins, among them
    ckanext-dcat's (its `dcat` command is listed) and the image's envvars."""
    pod.install_extensions(containerd, image("ckan-base"))
    pod.use_database(postgres)
    first_steps = pod.config.joinpath("start-ckan.sh").read_text().split("\n# 3.", 1)[0]
    assert ". /etc/ckan/ckan-env.sh" in first_steps, "start-ckan.sh changed its steps; update this test"
    script = f"""{first_steps}
ckan config-tool "$CKAN_INI" "ckan.plugins = $CKAN__PLUGINS"
grep '^ckan.plugins' "$CKAN_INI"
python3 -c 'import ckanext.dcat.plugins, ckanext.envvars.plugin, ckanext.activity.plugin; print("ckanext: one namespace")'
sh /etc/ckan/ckan-cli.sh --help
"""
    result = pod.run(containerd, image("ckan-base"), pod.server, "/bin/sh", "-c", script, check=False, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    lines = result.stdout.splitlines()
    assert f"ckan.plugins = {env_of(pod.server)['CKAN__PLUGINS']}" in lines
    assert "ckanext: one namespace" in lines
    assert any(line.split()[:1] == ["dcat"] for line in lines), output[-4000:]


def _serve(start: str) -> str:
    """A script that answers prerun.py's Solr check with a file server, runs `start` in the
    background, prints the first answer of /api/action/status_show (JSON) and how long it took,
    stops both and prints the server's log; it gives up after READY_WITHIN seconds."""
    return f"""
mkdir -p /tmp/solr/solr/ckan/schema && echo '{{"name": "ckan-2.11"}}' > /tmp/solr/solr/ckan/schema/name
python3 -m http.server 8983 --bind 127.0.0.1 --directory /tmp/solr >/dev/null 2>&1 &
solr=$!
{start} >/tmp/log 2>&1 &
server=$!
python3 - <<'EOF'
import json, sys, time, urllib.request
started = time.monotonic()
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:5000/api/action/status_show", timeout=10) as reply:
            print(json.dumps(json.load(reply)["result"]))
            print(f"ready after {{time.monotonic() - started:.0f}} s")
            break
    except OSError as error:
        if time.monotonic() - started > {READY_WITHIN}:
            sys.exit(f"not ready after {READY_WITHIN} s: {{error}}")
        time.sleep(2)
EOF
status=$?
kill $server $solr; wait
cat /tmp/log
exit $status
"""


def test_prerun_and_uwsgi_serve_the_api(containerd: Containerd, image, pod: Pod, postgres: Path):
    """The chart's server script as rendered (with the database change above) and CKAN_SOLR_URL
    naming the file server: prerun.py makes the schema and the sysadmin, then uWSGI answers
    /api/action/status_show, the path of the chart's probes, with the chart's site URL and plugins
    (and no version: the chart's ini hides it)."""
    pod.install_extensions(containerd, image("ckan-base"))
    pod.use_database(postgres)
    assert SERVE in pod.config.joinpath("start-ckan.sh").read_text(), "the server command changed; update this test"
    result = pod.run(
        containerd,
        image("ckan-base"),
        pod.server,
        "/bin/sh",
        "-c",
        _serve("/bin/sh /etc/ckan/start-ckan.sh"),
        env={"CKAN_SOLR_URL": SOLR_URL},
        check=False,
        timeout=READY_WITHIN + 120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    status = json.loads(result.stdout.splitlines()[0])
    assert status["site_url"] == env_of(pod.server)["CKAN_SITE_URL"]
    assert "ckan_version" not in status
    assert status["extensions"] == env_of(pod.server)["CKAN__PLUGINS"].split()
    assert "[prerun] created sysadmin admin" in output


def test_the_images_own_command_serves_the_api(containerd: Containerd, image, postgres: Path):
    """The image's CMD on its own, with its default plugins: its user, a writable root, the image's
    ini, the databases (CKAN's and the DataStore's) and Solr in the environment. start_ckan.sh
    writes random secrets into the ini (CKAN refuses to start without SECRET_KEY), prerun.py also
    sets the DataStore's permissions, and uWSGI runs with start_ckan.sh's default options."""
    url = f"{DB_PASSWORD}@/{{}}?host=/run/postgresql"
    result = containerd.run(
        image("ckan-base"),
        "/bin/sh",
        "-c",
        _serve(" ".join(IMAGE.cmd)),
        env={
            "CKAN_SQLALCHEMY_URL": "postgresql://ckan:" + url.format("ckan"),
            "CKAN_DATASTORE_WRITE_URL": "postgresql://ckan:" + url.format("datastore"),
            "CKAN_DATASTORE_READ_URL": "postgresql://datastore_ro:" + url.format("datastore"),
            "CKAN_SOLR_URL": SOLR_URL,
        },
        mounts=[bind(postgres, "/run/postgresql")],
        check=False,
        timeout=READY_WITHIN + 120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    status = json.loads(result.stdout.splitlines()[0])
    assert status["ckan_version"] == "2.11.6"
    assert status["extensions"] == IMAGE.env["CKAN__PLUGINS"].split()
    assert status["site_url"] == IMAGE.env["CKAN_SITE_URL"]
    assert "SECRET_KEY is empty: writing random secrets to /srv/app/ckan.ini" in result.stdout
    assert "[prerun] DataStore permissions set" in result.stdout
