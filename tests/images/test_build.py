"""Images built from their recipes, imported with `ctr` into a throwaway containerd, and run: each
as the charts run it (their uid, read-only root, emptyDirs as tmpfs) where that matters.

Marked `images`: minutes on a cold cache (debootstrap, apt); `pytest -m 'not images'` leaves them
out of a quick local run. They need root, debootstrap and containerd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import env_of, find
from tests.images.build import build
from tests.images.containerd import Containerd, bind, tmpfs
from tests.images.oci import inspect_archive
from tests.images.recipe import load_recipe, recipe_names

pytestmark = pytest.mark.images


@pytest.mark.parametrize("name", recipe_names())
def test_archive_is_a_valid_oci_layout_named_for_upstream(name: str):
    archive = inspect_archive(build(name))
    assert archive.name == load_recipe(name).image
    assert "dev/null" not in archive.layer_names


def test_pause_runs(containerd: Containerd, image):
    result = containerd.run(image("pause"), "/pause", "-v")
    assert result.stdout == "pause.c v3.10\n"


def test_busybox_has_a_shell_and_its_applets(containerd: Containerd, image):
    result = containerd.run(image("busybox"), "sh", "-c", "id -u && echo hello | tr a-z A-Z")
    assert result.stdout.split() == ["0", "HELLO"]


def test_nginx_reads_a_stream_block_read_only(containerd: Containerd, image, tmp_path: Path):
    """Upstream's nginx has the stream module built in, so the gateway's configuration has a
    `stream {}` block and no load_module: the image's nginx must accept that. (As the image's
    user 101: this ctr cannot replace an image's USER; the charts' uid is for the real node.) The
    configuration sets every temp path, as the charts' do: the compiled-in ones are on the read-only root."""
    config = tmp_path / "mims"
    config.mkdir(mode=0o755)
    (config / "nginx.conf").write_text(
        "pid /tmp/nginx.pid;\nerror_log stderr warn;\nevents {}\n"
        "http { client_body_temp_path /tmp/client_body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fastcgi;"
        " uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;"
        " server { listen 8080; location = /healthz { return 200 ok; } } }\n"
        "stream { server { listen 8883; proxy_pass 127.0.0.1:1883; } }\n"
    )
    result = containerd.run(
        image("nginx-unprivileged"),
        "/docker-entrypoint.sh",
        "nginx",
        "-t",
        "-g",
        "daemon off;",
        "-c",
        "/etc/mims/nginx.conf",
        read_only=True,
        mounts=[bind(config, "/etc/mims"), tmpfs("/tmp")],
    )
    assert "test is successful" in result.stderr


def test_mosquitto_takes_a_message_read_only_as_any_uid(containerd: Containerd, image):
    script = (
        "/usr/sbin/mosquitto -c /mosquitto-no-auth.conf -d && sleep 1 && "
        "mosquitto_pub -h 127.0.0.1 -t test -m hello && echo published"
    )
    result = containerd.run(image("eclipse-mosquitto"), "sh", "-c", script, user="11883:11883", read_only=True)
    assert result.stdout.strip().endswith("published")


def test_valkey_names_answer_ping_read_only_as_any_uid(containerd: Containerd, image):
    script = (
        "valkey-server --save '' --appendonly no --port 6379 & "
        "for i in 1 2 3 4 5 6 7 8 9 10; do valkey-cli ping 2>/dev/null && break; sleep 0.5; done"
    )
    result = containerd.run(
        image("valkey"), "sh", "-c", script, user="10379:10379", read_only=True, mounts=[tmpfs("/data")]
    )
    assert "PONG" in result.stdout


def test_oauth2_proxy_runs_read_only_as_its_user(containerd: Containerd, image):
    result = containerd.run(image("oauth2-proxy"), "/bin/oauth2-proxy", "--version", read_only=True)
    assert "oauth2-proxy v7.15.6" in result.stdout + result.stderr


def test_prometheus_becomes_ready_read_only_as_nobody(containerd: Containerd, image, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 65534, 65534)  # the volume, as fsGroup 65534 leaves it writable
    script = (
        "/bin/prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus "
        "--web.listen-address=127.0.0.1:9090 >/tmp/log 2>&1 & "
        "for i in $(seq 30); do promtool check ready --url=http://127.0.0.1:9090 && exit 0; sleep 1; done; "
        "cat /tmp/log; exit 1"
    )
    result = containerd.run(
        image("prometheus"),
        "/bin/sh",
        "-c",
        script,
        read_only=True,
        mounts=[bind(data, "/prometheus", read_only=False), tmpfs("/tmp")],
    )
    assert "ready" in (result.stdout + result.stderr).lower()


def test_postgres_version_through_the_entrypoint_as_the_image_user(containerd: Containerd, image):
    result = containerd.run(image("postgres"), "docker-entrypoint.sh", "postgres", "--version", user="70:70")
    assert result.stdout.startswith("postgres (PostgreSQL) 15.")


@pytest.mark.parametrize(
    ("name", "example", "workload"),
    [("postgres", "small-city", "keycloak-db"), ("postgis", "standard-city", "broker-db")],
)
def test_the_charts_database_set_up_runs_in_the_image(
    containerd: Containerd, image, rendered_examples, tmp_path: Path, name: str, example: str, workload: str
):
    """The rendered set-up init container (docker-ensure-initdb.sh, then roles and owners), as the
    chart runs it: uid 10999 without a passwd entry, read-only root. Then the application logs in
    over TCP with its password, which needs the `host all all all` rule the image's initdb adds."""
    rendering = rendered_examples[example]
    set_up = find(rendering, "ConfigMap", f"{workload}-set-up")["data"]
    pod = find(rendering, "StatefulSet", workload)["spec"]["template"]["spec"]
    env = env_of(pod["initContainers"][0])
    app_user = next(
        line.split("'")[1] for line in set_up["roles.sql"].splitlines() if line.startswith("\\set app_role")
    )
    for folder in ("set-up", "superuser", "app", "data"):
        (tmp_path / folder).mkdir()
    for file_name, text in set_up.items():
        (tmp_path / "set-up" / file_name).write_text(text)
    (tmp_path / "superuser/password").write_text("superuser-secret")
    (tmp_path / "app/password").write_text("application-secret")
    for path in (tmp_path / "superuser/password", tmp_path / "app/password"):
        os.chown(path, 0, 10999)
        path.chmod(0o440)
    os.chown(tmp_path / "data", 10999, 10999)
    common = {"user": "10999:10999", "read_only": True}
    volumes = [
        bind(tmp_path / "data", "/var/lib/postgresql", read_only=False),
        tmpfs("/var/run/postgresql"),
        tmpfs("/tmp"),
    ]
    containerd.run(
        image(name),
        "bash",
        "/etc/mims-db/set-up.sh",
        env=env,
        mounts=[
            *volumes,
            bind(tmp_path / "set-up", "/etc/mims-db"),
            bind(tmp_path / "superuser", "/run/secrets/db-superuser"),
            bind(tmp_path / "app", "/run/secrets/db-app"),
        ],
        **common,
    )
    database = env["POSTGRES_DB"]
    check = (
        'pg_ctl --wait --silent --log /tmp/log -o "-c listen_addresses=127.0.0.1" start && '
        f"pg_isready -U postgres -d {database} -h 127.0.0.1 && "
        f"PGPASSWORD=application-secret psql -h 127.0.0.1 -U {app_user} -d {database} -At "
        "-c 'SELECT current_user' -c \"SELECT count(*) FROM pg_extension WHERE extname = 'postgis'\"; "
        "status=$?; pg_ctl --wait --silent --mode fast stop; exit $status"
    )
    result = containerd.run(image(name), "bash", "-c", check, env={"PGDATA": env["PGDATA"]}, mounts=volumes, **common)
    lines = result.stdout.split()
    assert lines[-2] == app_user
    assert lines[-1] == ("1" if name == "postgis" else "0")
