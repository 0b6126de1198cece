"""Which cluster a command talks to: flags over the blueprint, existing contexts, and the errors that
say what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mims.blueprint.model import Cluster
from mims.cluster import ClusterConnection, SimCluster, resolve
from mims.errors import ClusterError
from tests.conftest import Said


def kubeconfig(path: Path, contexts: list[str], current: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.example:6443"}} for c in contexts],
        "users": [{"name": c, "user": {"token": "t"}} for c in contexts],
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return tmp_path / "user" / ".kube" / "config"


def test_kubeconfig_flag_uses_its_current_context(tmp_path, home):
    file = kubeconfig(tmp_path / "k.yaml", ["a", "b"], current="a")
    assert resolve(Cluster(target="sim"), kubeconfig=file) == ClusterConnection("context", "a", file, "a")


def test_context_flag_wins_over_the_blueprint(tmp_path, home, monkeypatch):
    file = kubeconfig(tmp_path / "k.yaml", ["a", "b"], current="a")
    monkeypatch.setenv("KUBECONFIG", str(file))
    connection = resolve(Cluster(target="context", context="a"), context="b")
    assert (connection.kind, connection.context, connection.kubeconfig) == ("context", "b", file)


def test_contexts_come_from_every_kubeconfig_file_listed(tmp_path, home, monkeypatch):
    first = kubeconfig(tmp_path / "one.yaml", ["a"], current="a")
    second = kubeconfig(tmp_path / "two.yaml", ["a", "prod"])
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(tmp_path / "absent"), str(second)]))
    assert resolve(None, context="prod").kubeconfig == second
    assert resolve(None, context="a").kubeconfig == first  # the first file defining it wins


def test_default_kubeconfig_is_in_the_home_folder(no_kubeconfig, home):
    kubeconfig(no_kubeconfig, ["dev"], current="dev")
    connection = resolve(Cluster(target="context", context="dev"))
    assert connection == ClusterConnection("context", "dev", no_kubeconfig, "dev")


def test_missing_context_lists_the_available_ones(tmp_path, home):
    file = kubeconfig(tmp_path / "k.yaml", ["b", "a"])
    with pytest.raises(ClusterError, match=r"context `prod` is not in kubeconfig .*k.yaml; available: a, b"):
        resolve(None, kubeconfig=file, context="prod")


def test_kubeconfig_without_current_context_needs_one(tmp_path, home):
    file = kubeconfig(tmp_path / "k.yaml", ["a"])
    with pytest.raises(ClusterError, match="has no current-context; pass --context"):
        resolve(None, kubeconfig=file)


def test_missing_kubeconfig_is_named(no_kubeconfig, home):
    with pytest.raises(ClusterError, match=f"no kubeconfig at {no_kubeconfig}"):
        resolve(Cluster(target="context", context="dev"))


def test_broken_kubeconfig_is_named(tmp_path, home):
    file = tmp_path / "k.yaml"
    file.write_text("contexts: [unclosed\n")
    with pytest.raises(ClusterError, match="cannot read kubeconfig"):
        resolve(None, kubeconfig=file, context="a")


def test_missing_simulated_cluster_says_how_to_create_it(home):
    with pytest.raises(ClusterError, match=r"^no simulated cluster `mims`; run `mims cluster create --sim`$"):
        resolve(Cluster(target="sim"), create_sim=False)
    with pytest.raises(ClusterError, match="no simulated cluster `mims`"):
        resolve(None)


def test_stopped_simulated_cluster_says_how_to_start_it(home):
    (home / "clusters" / "mims").mkdir(parents=True)
    with pytest.raises(ClusterError, match="simulated cluster `mims` is stopped; run `mims cluster create --sim`"):
        resolve(Cluster(target="sim"))


def test_simulated_cluster_is_created_when_asked(home, monkeypatch):
    calls = []
    monkeypatch.setattr(
        SimCluster,
        "create",
        lambda self, cpu=None, memory=None, progress=None: calls.append((self.name, cpu, memory, progress)),
    )
    say = Said()
    connection = resolve(Cluster(target="sim"), sim_name="ci", create_sim=True, sim_node=("8", "32Gi"), progress=say)
    assert calls == [("ci", "8", "32Gi", say)]
    assert connection == ClusterConnection("sim", "ci", home / "clusters" / "ci" / "kubeconfig", None)


def test_kind_without_a_container_runtime(home, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ClusterError, match=r"^kind needs Docker or Podman; neither is on PATH$"):
        resolve(Cluster(target="kind"), create_sim=True)


def test_api_client_reads_the_connection_kubeconfig(tmp_path):
    file = kubeconfig(tmp_path / "k.yaml", ["a", "b"], current="a")
    api = ClusterConnection("context", "b", file, "b").api_client()
    assert api.configuration.host == "https://b.example:6443"
    assert ClusterConnection("context", "a", file).kubeconfig_text() == file.read_text()


def test_api_client_of_an_unknown_context_is_a_cluster_error(tmp_path):
    file = kubeconfig(tmp_path / "k.yaml", ["a"], current="a")
    with pytest.raises(ClusterError, match="cannot use kubeconfig"):
        ClusterConnection("context", "zz", file, "zz").api_client()
