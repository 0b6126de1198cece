"""Fixtures for cluster tests: a per-test MIMS_HOME, the `mims` entry point, and one real simulated
cluster for the whole session (started once; each test gets it running)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mims.cluster import SimCluster
from mims.cluster.sim import TOOLS
from mims.toolchain import status as toolchain_status

SIM_NAME = "test"


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """An empty MIMS_HOME for one test (tests that need the session cluster use `sim` instead)."""
    monkeypatch.setenv("MIMS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="session")
def _sim_session(tmp_path_factory):
    missing = [s.name for s in toolchain_status() if s.name in TOOLS and s.state != "present"]
    if missing and not shutil.which("go"):
        pytest.skip(
            f"the simulated cluster's binaries ({', '.join(missing)}) are not built and `go` is "
            "not on PATH to build them"
        )
    home = tmp_path_factory.mktemp("mims-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MIMS_HOME", str(home))
        cluster = SimCluster(SIM_NAME)
        cluster.create()  # builds missing binaries first (install)
        try:
            yield cluster, home
        finally:
            cluster.delete()


@pytest.fixture
def sim(_sim_session, monkeypatch) -> SimCluster:
    """The session's simulated cluster, running (`create` is a no-op when it is), with MIMS_HOME
    pointing at it for `mims` commands."""
    cluster, home = _sim_session
    monkeypatch.setenv("MIMS_HOME", str(home))
    cluster.create()
    return cluster
