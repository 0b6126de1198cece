"""`mims cluster ...` as a user runs it (the real simulated cluster's commands are in test_sim)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest


def test_cluster_types_exclude_each_other(cli, home):
    code, _, err = cli("cluster", "create", "--sim", "--node")
    assert code == 2 and "--sim, --node and --kind exclude each other" in err


def test_node_options_need_a_node(cli, home):
    code, _, err = cli("cluster", "create", "--node-ip", "192.0.2.7")
    assert code == 2 and "--node-ip and --install-packages are for a real node" in err


def test_load_images_into_a_simulated_cluster_is_refused(cli, home, tmp_path):
    code, _, err = cli("cluster", "load-images", str(tmp_path / "x.tar"))
    assert code == 2 and "runs no containers" in err


def test_a_name_keeps_its_cluster_type(cli, home):
    (home / "clusters" / "mims").mkdir(parents=True)
    (home / "clusters" / "mims" / "state.json").write_text(json.dumps({"type": "sim"}))
    code, _, err = cli("cluster", "create", "--node")
    assert code == 6  # ClusterError
    assert "cluster `mims` is a simulated cluster, not a real-node cluster" in err


def test_node_size_is_for_simulated_clusters_only(cli, home):
    code, _, err = cli("cluster", "create", "--kind", "--cpu", "8")
    assert code == 2 and "--cpu and --memory size a simulated cluster's node" in err


def test_bad_node_size_is_a_usage_error(cli, home):
    code, _, err = cli("cluster", "create", "--memory", "lots")
    assert code == 2 and "node memory 'lots'" in err
    assert not (home / "clusters" / "mims").exists()


def test_status_of_a_missing_cluster(cli, home):
    code, out, _ = cli("cluster", "status")
    assert code == 0 and "simulated cluster `mims`: not created (mims cluster create --sim)" in out
    code, out, _ = cli("cluster", "status", "--json")
    assert json.loads(out)["state"] == "missing"


def test_delete_without_a_terminal_needs_yes(cli, home):
    (home / "clusters" / "mims").mkdir(parents=True)
    code, _, err = cli("cluster", "delete")
    assert code == 2 and "deleting simulated cluster `mims` needs --yes (no terminal to confirm on)" in err
    assert (home / "clusters" / "mims").exists()
    code, _, err = cli("cluster", "delete", "--yes")
    assert code == 0 and "deleted simulated cluster `mims`" in err
    assert not (home / "clusters" / "mims").exists()


def test_delete_of_nothing_succeeds(cli, home):
    code, _, err = cli("cluster", "delete", "--name", "gone", "--yes")
    assert code == 0 and "no simulated cluster `gone`; nothing to delete" in err


def test_stop_of_a_cluster_that_is_not_running(cli, home):
    code, _, err = cli("cluster", "stop")
    assert code == 0 and "was not running" in err


def test_kind_without_runtime_exits_with_the_cluster_error_code(cli, home, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = cli("cluster", "create", "--kind")
    assert code == 6 and "kind needs Docker or Podman; neither is on PATH" in err


def test_bad_name_is_a_usage_error(cli, home):
    code, _, err = cli("cluster", "status", "--name", "Not_A_Name")
    assert code == 2 and "cluster name 'Not_A_Name'" in err


def test_a_second_real_node_is_refused_while_one_runs(cli, home):
    if os.geteuid() != 0:
        pytest.skip("the root check comes first")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (home / "clusters" / "first").mkdir(parents=True)
        state = {"type": "node", "processes": {"etcd": {"pid": sleeper.pid, "binary": "sleep"}}}
        (home / "clusters" / "first" / "state.json").write_text(json.dumps(state))
        code, _, err = cli("cluster", "create", "--node", "--name", "second")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert code == 6 and "real-node cluster `first` already runs on this machine" in err
    assert not (home / "clusters" / "second").exists()
