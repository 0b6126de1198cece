"""`mims doctor` through the real entry point against a fake machine (tests/toolchain/fakes.py)."""

from __future__ import annotations

import json
import re

import pytest

from mims.toolchain import load_tools
from tests.toolchain.fakes import fake_go, fake_machine, remove_tool


@pytest.fixture
def machine(monkeypatch, tmp_path):
    return fake_machine(monkeypatch, tmp_path)


def states(out: str) -> dict[str, str]:
    """check name -> state, from the table below its header (continuation lines of a wrapped detail
    start with spaces)."""
    cells = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line[:1].strip()]
    return {c[0]: c[1] for c in cells[1:] if len(c) > 2}


def test_doctor_prints_every_check_and_exits_0_with_warnings(cli, machine):
    code, out, err = cli("doctor")
    assert code == 0 and err == ""
    table = states(out)
    tools = len(load_tools()[1])
    assert len(table) == 11 + tools  # one row per tool of tools.yaml
    assert table["tool kwok"] == table["go"] == table["passphrase"] == table["toolchain sources"] == "ok"
    assert table["container runtime"] == "warn"  # no docker or podman on the fake PATH
    assert table["real-node packages"] == "warn"  # nor containerd
    assert out.rstrip().splitlines()[-1] == f"{9 + tools} ok, 2 warn, 0 missing"


def test_doctor_json(cli, machine):
    fake_go(machine["bin"])
    remove_tool(machine["toolchain"], "etcd")
    code, out, _ = cli("doctor", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True  # etcd is only a warning: go can build it
    etcd = next(c for c in report["checks"] if c["name"] == "tool etcd")
    assert etcd == {
        "name": "tool etcd",
        "state": "warn",
        "detail": "3.6.16 not installed yet (go.etcd.io/etcd/server/v3@v3.6.16)",
        "fix": "`mims toolchain install etcd` downloads it from github.com or builds it",
        "blocking": False,
    }


def test_doctor_exits_4_when_a_tool_is_missing_offline_and_go_is_not_there(cli, machine, monkeypatch):
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    remove_tool(machine["toolchain"], "pulumi")
    code, out, err = cli("doctor")
    assert code == 4
    assert states(out)["tool pulumi"] == "missing"  # the table comes first
    assert err.strip() == (
        "error: pulumi is not installed and cannot be installed here (toolchain sources: "
        "present, build (MIMS_OFFLINE=1: no downloads); go: not on PATH (needed to build "
        "the missing tools))"
    )
