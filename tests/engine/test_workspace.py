"""Where the engine keeps state: no generated secret value is ever written in clear, neither to the
state, the work folders and the cluster logs under MIMS_HOME nor to any command's output.

Runs last of the engine tests (file order), so it searches everything the session ran."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.engine.conftest import RECORD, Deployed

from mims.toolchain import pulumi_home

pytestmark = pytest.mark.integration

MAX_FILE = 20 * 2**20


def _files(home: Path):
    """Every file under a MIMS_HOME but the simulated clusters' etcd data: that is the cluster's
    database, which holds Secrets as any Kubernetes cluster does."""
    for path in home.rglob("*"):
        parts = path.relative_to(home).parts
        if parts[0] == "clusters" and len(parts) > 2 and parts[2] == "etcd":
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def _pulumi_home_files(since: float):
    """The shared PULUMI_HOME's files written during the session (logs, workspace settings), not the
    plugins and binaries."""
    for path in pulumi_home().rglob("*"):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file() and stat.st_mtime >= since and stat.st_size < MAX_FILE:
            yield path


def test_no_generated_value_in_clear(small_city: Deployed):
    values = set(RECORD.values.values())
    assert small_city.values and len(values) >= 20, "no generated values were read back"
    needles = {v.encode() for v in values} | {base64.b64encode(v.encode()) for v in values}
    assert min(map(len, needles)) >= 8

    outputs = [(f"output of `mims {' '.join(run.args)}`", (run.out + run.err).encode()) for run in RECORD.runs]
    assert len(outputs) >= 2
    files = [path for client in RECORD.clients for path in _files(client.home)]
    assert any("state" in p.parts for p in files) and any(p.name == "kube-apiserver.log" for p in files)
    files += list(_pulumi_home_files(RECORD.started - 1))

    leaks = []
    for where, data in outputs + [(str(p), p.read_bytes()) for p in files]:
        leaks += [where for needle in needles if needle in data]
    assert not leaks, f"generated values found in clear in: {sorted(set(leaks))}"


def test_state_is_written_under_mims_home(small_city: Deployed):
    """The state, the work folders and the cluster live in MIMS_HOME, nowhere else."""
    home = small_city.mims.home
    layers = [f"mims-{s.layer.name}" for s in small_city.rendering.layers]
    with_objects = [f"mims-{s.layer.name}" for s in small_city.rendering.layers if s.objects]
    assert sorted(p.name for p in (home / "state" / ".pulumi" / "stacks").iterdir()) == sorted(
        with_objects + ["mims-secrets"]
    )  # an empty layer that never ran has no state
    assert {p.name for p in (home / "workspaces" / "alderbrook-prod").iterdir()} <= {*layers, "mims-secrets"}
    assert (home / "clusters" / "mims" / "kubeconfig").is_file()
    assert not (home / "state" / "passphrase").exists()  # MIMS_PASSPHRASE was set
