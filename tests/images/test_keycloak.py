"""The Keycloak test image run as charts/keycloak runs it: the image's user 1000 (this ctr cannot
set another; uid 10180 is for the real node), read-only root, emptyDirs as folders or tmpfs.

Marked `images`; the JVM makes these slow (on 2 cores about 35 s per `kc.sh build` and a minute
until the server is ready)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import env_of, find
from tests.images.containerd import Containerd, bind, tmpfs
from tests.images.recipe import load_recipe

pytestmark = pytest.mark.images

KC = "/opt/keycloak"
# The chart's server command ends in this; the start test runs it in the background instead.
START = f"exec {KC}/bin/kc.sh start --optimized --import-realm"
READY_WITHIN = 240  # seconds; the chart's startup probe allows 300
# Polls /health/ready on the management port with bash alone (the image has no HTTP client), then
# asks the realm's OIDC discovery on the HTTP port; prints the replies and the server's log.
PROBE = f"""
request() {{ exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' "$2" >&3 && tr -d ' \\n' <&3; exec 3<&-; }}
started=$SECONDS
until request 9000 /health/ready 2>/dev/null | grep -q '{{"status":"UP"'; do
  [ $((SECONDS - started)) -lt {READY_WITHIN} ] || {{ echo "not ready after {READY_WITHIN} s"; kill -9 %1; cat /tmp/log; exit 1; }}
  sleep 1
done
echo "ready after $((SECONDS - started)) s"
request 8080 /realms/$REALM/.well-known/openid-configuration | head -c 200; echo
kill %1; wait || true
cat /tmp/log
"""


def _folder(path: Path, owner: int = 0) -> Path:
    path.mkdir(mode=0o755)
    os.chown(path, owner, 0)
    return path


def _build_server(containerd: Containerd, image: str, pod: dict, quarkus: Path, db: str) -> str:
    """The chart's two init containers: copy the image's server to `quarkus` (the emptyDir), then
    `kc.sh build` on it with the chart's build options, KC_DB set to `db`. Returns build's output."""
    copy, build = pod["initContainers"]
    assert "command" not in build, "the chart's build container no longer runs the image's entrypoint"
    containerd.run(image, *copy["command"], read_only=True, mounts=[bind(quarkus, "/mnt/quarkus", read_only=False)])
    result = containerd.run(
        image,
        *load_recipe("keycloak").config.entrypoint,
        *build["args"],
        env={**env_of(build), "KC_DB": db},
        read_only=True,
        mounts=[bind(quarkus, f"{KC}/lib/quarkus", read_only=False), tmpfs("/tmp")],
        timeout=300,
    )
    return result.stdout


def test_keycloak_runs_as_its_user_on_java_17(containerd: Containerd, image):
    result = containerd.run(
        image("keycloak"), "/bin/sh", "-c", f"id -u && exec {KC}/bin/kc.sh --version", read_only=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "1000"
    assert "Keycloak 26.7.5" in lines
    assert any(line.startswith("JVM: 17.") for line in lines)


def test_the_charts_init_containers_build_the_server_read_only(
    containerd: Containerd, image, rendered_examples, tmp_path: Path
):
    """As rendered (PostgreSQL, health, metrics): the build writes only the emptyDir."""
    pod = find(rendered_examples["small-city"], "Deployment", "keycloak")["spec"]["template"]["spec"]
    quarkus = _folder(tmp_path / "quarkus", owner=1000)
    output = _build_server(containerd, image("keycloak"), pod, quarkus, env_of(pod["initContainers"][1])["KC_DB"])
    assert "Server configuration updated and persisted" in output
    image_copy = containerd.run(image("keycloak"), "sha256sum", f"{KC}/lib/quarkus/generated-bytecode.jar").stdout
    rebuilt = hashlib.sha256((quarkus / "generated-bytecode.jar").read_bytes()).hexdigest()
    assert image_copy.split()[0] != rebuilt


def test_the_charts_server_starts_optimized_and_becomes_ready(
    containerd: Containerd, image, rendered_examples, tmp_path: Path
):
    """The chart's server command, env, mounts and realm file, read-only, with one change: H2
    (`dev-file`) instead of PostgreSQL, since containers run here share no network. The chart's
    memory limit is given to the JVM (MaxRAM) as the kubelet's cgroup would; the realm import
    resolves the client secrets' placeholders from the files."""
    rendering = rendered_examples["small-city"]
    pod = find(rendering, "Deployment", "keycloak")["spec"]["template"]["spec"]
    server = pod["containers"][0]
    script = server["args"][0]
    assert START in script, "the chart's start command changed; update this test"
    quarkus = _folder(tmp_path / "quarkus", owner=1000)
    _build_server(containerd, image("keycloak"), pod, quarkus, db="dev-file")
    realm_json = find(rendering, "ConfigMap", "keycloak-realm")["data"]["realm.json"]
    realm = _folder(tmp_path / "realm")
    (realm / "realm.json").write_text(realm_json)
    clients = find(rendering, "Secret", "oidc-clients")["metadata"]["annotations"]["mims.io/generate"]
    secret_mounts = []
    for volume, files in {
        "db": ["password"],
        "admin": ["password"],
        "oidc": sorted(json.loads(clients)),  # every realm client's secret, as the Secret has them
    }.items():
        folder = _folder(tmp_path / volume)
        for name in files:
            (folder / name).write_text(f"{volume}-{name}-secret")
        secret_mounts.append(bind(folder, f"/run/secrets/{volume}"))
    memory = server["resources"]["limits"]["memory"]
    env = {
        **env_of(server),
        "KC_DB": "dev-file",
        "JAVA_OPTS_APPEND": f"-XX:MaxRAM={memory.removesuffix('i').lower()}",
        "REALM": json.loads(realm_json)["realm"],
    }
    result = containerd.run(
        image("keycloak"),
        *server["command"],
        script.replace(START, f"{KC}/bin/kc.sh start --optimized --import-realm >/tmp/log 2>&1 &") + PROBE,
        env=env,
        read_only=True,
        mounts=[
            bind(quarkus, f"{KC}/lib/quarkus"),
            tmpfs(f"{KC}/data"),
            bind(realm, f"{KC}/data/import"),
            tmpfs("/tmp"),
            *secret_mounts,
        ],
        check=False,
        timeout=READY_WITHIN + 120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "ready after" in result.stdout
    assert "HTTP/1.0200OK" in result.stdout, "the realm's OIDC discovery did not answer"
