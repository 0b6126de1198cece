"""Progress lines go to stderr through one `mims.progress.Progress`: `--quiet` silences them, errors
still go to stderr, and results (`--json`) go to stdout only."""

from __future__ import annotations

import json

from mims.cluster import SimCluster
from mims.console import Format, show
from mims.errors import ClusterError
from tests.conftest import EXAMPLES
from tests.toolchain.fakes import fake_machine

SMALL_CITY = next(p for p in EXAMPLES if p.name == "small-city.yaml")


def starting_cluster_fails(monkeypatch) -> None:
    """The simulated cluster reports a step of its start, then fails (nothing is started)."""

    def create(self, cpu=None, memory=None, progress=None):
        progress.say("starting etcd and kube-apiserver")
        raise ClusterError("etcd did not start")

    monkeypatch.setattr(SimCluster, "create", create)


def test_up_reports_the_cluster_start_and_quiet_silences_it(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("MIMS_HOME", str(tmp_path / "home"))
    starting_cluster_fails(monkeypatch)
    code, _, err = cli("up", SMALL_CITY, "--yes")
    assert code != 0 and "starting etcd and kube-apiserver" in err
    code, out, err = cli("up", SMALL_CITY, "--yes", "--quiet")
    assert code != 0 and out == "" and err.strip() == "error: etcd did not start"


def test_toolchain_install_quiet_prints_no_progress(cli, monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path)
    code, out, err = cli("toolchain", "install", "--quiet")
    assert code == 0 and err == "" and "already" in out


def test_json_goes_to_stdout_only(capsys):
    show(Format.JSON, data=lambda: {"ok": True}, table=lambda: ["a table line"])
    out, err = capsys.readouterr()
    assert json.loads(out) == {"ok": True} and err == ""
