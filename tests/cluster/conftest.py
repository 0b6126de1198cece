"""Fixtures for cluster tests: a per-test MIMS_HOME, the `mims` entry point, one real simulated
cluster for the whole session (started once; each test gets it running), and a process named
kubelet."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mims.cluster import SimCluster
from mims.cluster.sim import TOOLS
from mims.toolchain import status as toolchain_status
from tests.conftest import wait_for

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


@pytest.fixture
def fake_kubelet(tmp_path: Path):
    """A running process named `kubelet` (a copy of sleep), as the kernel names it in /proc; yields
    (the Popen, its path) and kills it afterwards unless the test did."""
    kubelet = tmp_path / "kubelet"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", kubelet)
    proc = subprocess.Popen([str(kubelet), "30"])
    try:
        # Popen returns when the exec has begun; the kernel renames the process a moment later.
        comm = Path(f"/proc/{proc.pid}/comm")
        wait_for("the process renamed kubelet", lambda: comm.read_text().strip() == "kubelet", timeout=5)
        yield proc, kubelet
    finally:
        proc.kill()
        proc.wait()
