"""Interrupted runs: a `mims up` killed half-way leaves a stale lock and pending operations; the
next `up` clears both and converges. Also which locks count as stale."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from tests.engine.conftest import Mims, blueprint_copy

from mims.engine.locks import _stale

# A city with few components, so killing and converging stays quick: the foundation, IAM, the
# broker and its @context server.
SMALL_PATCH = {
    "city": {"name": "killtown"},
    "components": {
        name: {"enabled": False} for name in ("ingestion", "catalogue", "ai_registry", "gateway", "monitoring")
    },
}
LOCK_LEFT = "removed a lock left by an interrupted run"


@pytest.fixture(scope="module")
def killed(homes, toolchain, tmp_path_factory):
    """`mims up` of a new city on a new cluster, SIGKILLed with its `pulumi` processes as soon as
    the first stack has created its first object."""
    mims = Mims(homes("killed"))
    blueprint = blueprint_copy(tmp_path_factory.mktemp("killed"), patch=SMALL_PATCH)
    process = mims.start("up", blueprint, "--yes")
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith("foundation: created "):
                os.killpg(process.pid, signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    mims.kill_leftovers()  # the provider plugins run in process groups of their own
    yield mims, blueprint
    mims.stop()


@pytest.mark.integration
def test_killed_up_converges(killed):
    mims, blueprint = killed
    locks = list((mims.home / "state" / ".pulumi" / "locks").rglob("*.json"))
    assert [p.parent.parent.name for p in locks] == ["mims-foundation"]
    # The lock above is what every kill leaves; pending operations too only when the SIGKILL lands while an
    # object is still in flight, which is a race with the engine (the foundation's objects are created
    # within milliseconds of each other), so their recovery is exercised when present, not required.

    again = mims.ok("up", blueprint, "--yes", "--json")
    assert LOCK_LEFT in again.err
    third = mims.ok("up", blueprint, "--yes", "--json")
    assert third.json()["changes"] == 0 and LOCK_LEFT not in third.err
    assert mims.ok("status", blueprint, "--json").json()["ready"] is True


@pytest.mark.integration
def test_stale_lock_makes_an_unchanged_stack_run(killed):
    """A lock left by a dead process on a stack whose last update matches the blueprint: the stack is
    not skipped as unchanged (a killed update writes no history), the lock goes, the update runs."""
    mims, blueprint = killed
    mims.ok("up", blueprint, "--yes")  # converged (also when run alone)
    folder = mims.home / "state" / ".pulumi" / "locks" / "organization" / "mims-iam" / "killtown-prod"
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"{uuid.uuid4()}.json"
    lock.write_text(
        json.dumps(
            {
                "pid": _dead_pid(),
                "username": "mims",
                "hostname": socket.gethostname(),
                "timestamp": "2026-01-01T00:00:00Z",
            }
        )
    )
    run = mims.ok("up", blueprint, "--yes", "--json")
    assert f"{LOCK_LEFT}: {lock}" in run.err
    assert not lock.exists()
    assert run.json()["changes"] == 0
    iam = next(s for s in run.json()["stacks"] if s["name"] == "iam")
    assert iam["seconds"] > 1  # ran the engine, was not skipped by its fingerprint


@pytest.mark.integration
def test_attributes_file_left_empty_is_repaired(killed):
    """A run killed while the file backend wrote a checkpoint's attributes leaves them empty; every
    `pulumi` command on that stack then fails with "failed to load checkpoint: EOF"."""
    mims, blueprint = killed
    mims.ok("up", blueprint, "--yes")  # converged (also when run alone)
    attrs = mims.home / "state" / ".pulumi" / "stacks" / "mims-broker" / "killtown-prod.json.attrs"
    attrs.write_text("")
    run = mims.ok("up", blueprint, "--yes", "--json")
    assert f"removed the unreadable attributes of a state file an interrupted run was writing: {attrs}" in run.err
    assert run.json()["changes"] == 0 and not attrs.exists()


# -- which locks are stale (no cluster) ------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _lock(tmp_path: Path, pid: int, hostname: str | None = None) -> Path:
    path = tmp_path / "lock.json"
    path.write_text(
        json.dumps(
            {
                "pid": pid,
                "username": "u",
                "hostname": hostname or socket.gethostname(),
                "timestamp": "2026-01-01T00:00:00Z",
            }
        )
    )
    return path


def test_lock_of_a_gone_process_is_stale(tmp_path):
    assert _stale(_lock(tmp_path, _dead_pid()))


def test_lock_of_a_zombie_is_stale(tmp_path):
    """A killed `pulumi` whose parent was killed too stays a zombie until it is reaped."""
    child = subprocess.Popen(["true"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert _stale(_lock(tmp_path, child.pid))
    finally:
        child.wait()


def test_lock_of_a_reused_process_id_is_stale(tmp_path):
    assert _stale(_lock(tmp_path, os.getpid()))  # this process is alive but is no `pulumi`


def test_lock_of_a_running_pulumi_is_kept(tmp_path):
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    shutil.copy(shutil.which("sleep"), fake)
    child = subprocess.Popen([str(fake), "30"])
    try:
        cmdline = Path(f"/proc/{child.pid}/cmdline")
        deadline = time.monotonic() + 10
        while not cmdline.read_bytes().startswith(str(fake).encode()) and time.monotonic() < deadline:
            time.sleep(0.01)  # forked, not yet exec'd
        assert not _stale(_lock(tmp_path, child.pid))
    finally:
        child.kill()
        child.wait()


def test_lock_of_another_host_is_kept(tmp_path):
    assert not _stale(_lock(tmp_path, _dead_pid(), hostname="elsewhere.example"))


def test_unreadable_lock_is_kept(tmp_path):
    path = tmp_path / "lock.json"
    path.write_text("{not json")
    assert not _stale(path)
