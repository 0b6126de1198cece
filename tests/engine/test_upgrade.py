"""An upgrade as a city makes it: release 0.1.0, installed from its commit in this repository's history,
deploys Keycloak and its PostgreSQL on a real node; rows are written; then `mims up` of the working
tree runs over the same state and cluster. No volume is replaced, the rows and the generated
credentials are intact, the new objects (the backups) come up, and a second `up` changes nothing."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client
from tests.conftest import FIXTURES, REPO
from tests.engine.conftest import Mims, start_real_node
from tests.engine.test_real_node import run_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a real node needs root"),
]

RELEASE, COMMIT = "0.1.0", "e931c51"  # CHANGELOG.md
BLUEPRINT = FIXTURES / "upgrade" / "blueprint.yaml"
IMAGES = ("pause", "busybox", "coredns", "postgres", "keycloak")
NS = "upton-iam"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The interpreter of a virtual environment holding mims 0.1.0, built from its commit."""
    if not (REPO / ".git").exists():
        pytest.fail("the upgrade test installs 0.1.0 from the repository's history: run it in a Git clone")
    folder = tmp_path_factory.mktemp("release")
    source = folder / "source"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", COMMIT], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    python = folder / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)], check=True)
    return python


def secret_values(core: client.CoreV1Api) -> dict[str, dict[str, str]]:
    return {
        s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}
        for s in core.list_namespaced_secret(NS).items
        if s.type == "Opaque"
    }


def volumes(core: client.CoreV1Api) -> dict[str, str]:
    return {c.metadata.name: c.spec.volume_name for c in core.list_namespaced_persistent_volume_claim(NS).items}


def test_an_upgrade_from_the_previous_release_keeps_volumes_data_and_credentials(homes, toolchain, release):
    mims = Mims(homes("upgrade"), node=True)
    try:
        start_real_node(mims, IMAGES)
        mims.python = release
        assert RELEASE in mims.ok("--version").out
        mims.ok("up", BLUEPRINT, "--yes")
        core = client.CoreV1Api(mims.api())
        psql = 'psql -U postgres -d keycloak -tAc "{}"'
        run_in(
            core,
            "keycloak-db-0",
            NS,
            psql.format("CREATE TABLE kept (v text); INSERT INTO kept VALUES (1)"),
            "postgres",
        )
        claims, credentials = volumes(core), secret_values(core)
        assert "data-keycloak-db-0" in claims and "keycloak-admin" in credentials

        mims.python = None
        upgraded = mims.ok("up", BLUEPRINT, "--yes", "--json").json()
        assert not any(s["replace"] or s["delete"] for s in upgraded["stacks"]), upgraded["stacks"]
        now = volumes(core)
        assert {name: now[name] for name in claims} == claims  # the same volumes, none replaced
        assert "keycloak-db-backups" in now  # what the new release adds
        assert {name: secret_values(core)[name] for name in credentials} == credentials
        assert run_in(core, "keycloak-db-0", NS, psql.format("SELECT v FROM kept"), "postgres").strip() == "1"
        status = mims.ok("status", BLUEPRINT, "--json").json()
        assert status["ready"] is True, [w for w in status["workloads"] if not w["ok"]]
        again = mims.ok("up", BLUEPRINT, "--yes", "--json").json()
        assert again["changes"] == 0
    finally:
        mims.delete()
