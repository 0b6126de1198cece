"""`mims toolchain status` and `mims toolchain install` against a fake cache (MIMS_CACHE_DIR): nothing
is built; the one path that would build is replaced by a fake `install` that reports progress."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mims import toolchain
from mims.commands import toolchain as toolchain_commands
from mims.toolchain import InstalledTool
from tests.toolchain.fakes import fake_machine, remove_tool

TOOLS = ["pulumi", "pulumi-kubernetes", "kubernetes", "etcd", "kwok"]


@pytest.fixture
def machine(monkeypatch, tmp_path):
    return fake_machine(monkeypatch, tmp_path)


def rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in TOOLS}


def test_status_shows_present_missing_and_stale_and_the_cache_dir(cli, machine):
    remove_tool(machine["toolchain"], "kwok")
    (machine["toolchain"] / "etcd-3.6.16" / "bin" / "etcd").unlink()
    code, out, _ = cli("toolchain", "status")
    assert code == 0
    table = rows(out)
    assert table["pulumi"] == ["pulumi", "3.274.1", "present", "built", "12s", "pulumi-3.274.1/"]
    assert table["kwok"] == ["kwok", "0.8.0", "missing", "kwok-0.8.0/"]
    assert table["etcd"] == ["etcd", "3.6.16", "stale", "etcd-3.6.16/"]
    assert f"toolchain dir: {machine['toolchain']}" in out
    assert "7 of 9 installed; `mims toolchain install` installs etcd, kwok" in out


def test_status_json(cli, machine):
    remove_tool(machine["toolchain"], "kubernetes")
    code, out, _ = cli("toolchain", "status", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["toolchain_dir"] == str(machine["toolchain"]) and report["ready"] is False
    assert report["pulumi_home"] == str(machine["toolchain"] / "pulumi-home")
    states = {t["name"]: t["state"] for t in report["tools"]}
    assert states == {
        "pulumi": "present",
        "pulumi-kubernetes": "present",
        "kubernetes": "missing",
        "kubernetes-node": "present",
        "kubectl": "present",
        "etcd": "present",
        "kwok": "present",
        "kube-router": "present",
        "local-path-provisioner": "present",
    }
    provider = next(t for t in report["tools"] if t["name"] == "pulumi-kubernetes")
    assert provider["plugin_dir"].endswith("pulumi-home/plugins/resource-kubernetes-v4.25.0")
    assert provider["binaries"]["pulumi-resource-kubernetes"].endswith("/bin/pulumi-resource-kubernetes")


def test_install_of_built_tools_builds_nothing_and_needs_no_go(cli, machine):
    binary = machine["toolchain"] / "kubernetes-1.33.13" / "bin" / "kube-apiserver"
    stamp = binary.stat().st_mtime_ns
    code, out, err = cli("toolchain", "install")  # PATH has no go
    assert code == 0
    assert all(rows(out)[t][2:4] == ["already", "built"] for t in TOOLS)
    assert "0s  kubernetes: kubernetes 1.33.13 is already built" in err
    assert binary.stat().st_mtime_ns == stamp


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_install_reports_each_step_with_the_seconds_since_it_began(cli, machine, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(toolchain_commands, "time", SimpleNamespace(monotonic=clock.monotonic))
    asked = []

    def fake_install(names=None, cache_dir=None, progress=None, sources=None):
        asked.append((names, sources))
        progress.say("etcd: downloading go.etcd.io/etcd/server/v3@v3.6.16")
        clock.now += 27.6
        progress.say("etcd: building etcd (go build .)")
        clock.now += 0.4
        progress.say("etcd: built etcd 3.6.16 in 28s")
        progress.say("kwok: kwok 0.8.0 is already built")
        root = toolchain.toolchain_dir()
        return {
            "etcd": InstalledTool("etcd", "3.6.16", root / "etcd-3.6.16", {}, True, seconds=28.0),
            "kwok": InstalledTool("kwok", "0.8.0", root / "kwok-0.8.0", {}, False),
        }

    monkeypatch.setattr(toolchain, "install", fake_install)
    code, out, err = cli("toolchain", "install", "etcd", "kwok", "etcd")
    assert code == 0 and asked == [(["etcd", "kwok"], ("present", "download", "build"))]
    assert err.splitlines() == [
        "    0s  etcd: downloading go.etcd.io/etcd/server/v3@v3.6.16",
        "   28s  etcd: building etcd (go build .)",
        "   28s  etcd: built etcd 3.6.16 in 28s",
        "   28s  kwok: kwok 0.8.0 is already built",
    ]
    assert rows(out)["etcd"] == ["etcd", "3.6.16", "built", "in", "28s", "etcd-3.6.16/"]
    assert rows(out)["kwok"] == ["kwok", "0.8.0", "already", "built", "kwok-0.8.0/"]


def test_install_json(cli, machine):
    code, out, _ = cli("toolchain", "install", "pulumi", "--json")
    assert code == 0
    report = json.loads(out)
    [pulumi] = report["tools"]
    assert (pulumi["name"], pulumi["version"], pulumi["built"]) == ("pulumi", "3.274.1", False)
    assert Path(pulumi["binaries"]["pulumi"]) == machine["toolchain"] / "pulumi-3.274.1" / "bin" / "pulumi"
    assert report["toolchain_dir"] == str(machine["toolchain"])


def test_install_of_an_unknown_tool_is_a_usage_error(cli, machine):
    code, out, err = cli("toolchain", "install", "helm")
    assert code == 2 and out == ""
    assert "error: unknown tool helm; choose from pulumi, pulumi-kubernetes, kubernetes, kubernetes-node, " in err


def test_install_without_go_exits_4_naming_the_tool(cli, machine, monkeypatch):
    monkeypatch.setenv("MIMS_OFFLINE", "1")  # no download either (and no network in tests)
    remove_tool(machine["toolchain"], "kwok")
    code, out, err = cli("toolchain", "install", "kwok")
    assert code == 4 and out == ""
    assert "kwok: not found on this machine (no kwok 0.8.0 on PATH); building from the Go module cache" in err
    assert (
        "error: cannot install kwok 0.8.0:\n  present: no kwok 0.8.0 on PATH\n"
        "  build: cannot build kwok 0.8.0: `go` is not on PATH"
    ) in err


def test_install_passes_the_chosen_sources(cli, machine, monkeypatch):
    asked = []
    monkeypatch.setattr(
        toolchain, "install", lambda names=None, progress=None, sources=None: asked.append(sources) or {}
    )
    assert cli("toolchain", "install", "--source", "build", "--source", "present")[0] == 0
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    assert cli("toolchain", "install", "--source", "present,download,build")[0] == 0
    assert asked == [("present", "build"), ("present", "build")]


def test_install_with_an_unknown_source_is_a_usage_error(cli, machine):
    code, out, err = cli("toolchain", "install", "--source", "present,ftp")
    assert code == 2 and out == ""
    assert "error: --source: unknown source ftp; choose from present, download, build" in err


def test_status_shows_where_tools_came_from(cli, machine):
    data = json.loads((machine["toolchain"] / "etcd-3.6.16" / "tool.json").read_text())
    url = "https://github.com/etcd-io/etcd/releases/download/v3.6.16/etcd-v3.6.16-linux-amd64.tar.gz"
    data.update(source="download", urls={"etcd": url})
    (machine["toolchain"] / "etcd-3.6.16" / "tool.json").write_text(json.dumps(data))
    code, out, _ = cli("toolchain", "status")
    assert code == 0 and rows(out)["etcd"] == ["etcd", "3.6.16", "present", "downloaded", "etcd-3.6.16/"]
    code, out, _ = cli("toolchain", "status", "--json")
    etcd = next(t for t in json.loads(out)["tools"] if t["name"] == "etcd")
    assert (etcd["source"], etcd["origin"]) == ("download", url)
