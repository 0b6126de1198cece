"""The simulated cluster: a real one started once for the session (see conftest), checked the way the
platform will use it, then its lifecycle (restart on the same data, delete); and failures reported
with the component's log, using stand-in binaries."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from mims.cluster import ClusterConnection, SimCluster
from mims.cluster.sim import COMPONENTS, NODE_NAME, TOOLS
from mims.errors import ClusterError, UsageError
from mims.toolchain import InstalledTool, load_tools
from tests.conftest import Said, wait_for

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}}


@pytest.fixture
def api(sim: SimCluster) -> client.ApiClient:
    return ClusterConnection("sim", sim.name, sim.kubeconfig).api_client()


@pytest.fixture
def namespace(api) -> str:
    """A fresh namespace enforcing Pod Security `restricted`, as every mims namespace does."""
    name = f"t-{time.monotonic_ns() % 10**9}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
    )
    return name


def pod_template(app: str, **extra) -> dict:
    container = {
        "name": app,
        "image": "registry.example/app:1.0",
        "securityContext": RESTRICTED,
        "resources": RESOURCES,
        **extra,
    }
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}


def test_api_server_is_ready(api):
    response = api.call_api("GET", api.configuration.host + "/readyz")
    assert response.status == 200 and response.read() == b"ok"


def test_one_ready_node_of_4_cpu_and_16_gib(api):
    nodes = client.CoreV1Api(api).list_node().items
    assert [n.metadata.name for n in nodes] == [NODE_NAME]
    node = nodes[0]
    assert node.status.allocatable["cpu"] == "4" and node.status.allocatable["memory"] == "16Gi"
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    assert not node.spec.taints


def test_deployment_becomes_available(api, namespace):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")},
        },
    )
    wait_for(
        "Deployment Available",
        lambda: apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas == 2,
    )
    conditions = apps.read_namespaced_deployment_status("web", namespace).status.conditions
    assert {c.type: c.status for c in conditions}["Available"] == "True"


def test_statefulset_volume_claim_is_bound(api, namespace):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    template = pod_template("db", volumeMounts=[{"name": "data", "mountPath": "/data"}])
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": template,
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    }
                ],
            },
        },
    )
    wait_for("PVC Bound", lambda: _pvc_phase(core, namespace, "data-db-0") == "Bound")
    claim = core.read_namespaced_persistent_volume_claim("data-db-0", namespace)
    assert claim.spec.storage_class_name == "kwok-volume"  # filled in as the default class
    wait_for("StatefulSet ready", lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 1)


def _pvc_phase(core, namespace: str, name: str) -> str | None:
    try:
        return core.read_namespaced_persistent_volume_claim(name, namespace).status.phase
    except ApiException:
        return None  # not created by the StatefulSet controller yet


def test_load_balancer_service_gets_an_address(api, namespace):
    core = client.CoreV1Api(api)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "gateway"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "gateway"}, "ports": [{"port": 80}]},
        },
    )
    ingress = wait_for(
        "a load balancer address",
        lambda: core.read_namespaced_service_status("gateway", namespace).status.load_balancer.ingress,
    )
    assert ingress[0].ip == "127.0.0.1"


def test_restricted_namespace_rejects_a_violating_pod(api, namespace):
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).create_namespaced_pod(
            namespace, {"metadata": {"name": "bad"}, "spec": {"containers": [{"name": "bad", "image": "x:1"}]}}
        )
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted' in json.loads(refused.value.body)["message"]


def test_create_again_returns_the_running_cluster(sim):
    before = sim.status()
    started = time.monotonic()
    again = sim.create()
    assert time.monotonic() - started < 2
    assert again.api_url == before.api_url
    assert [p.pid for p in again.processes] == [p.pid for p in before.processes]


def test_status_reports_processes_and_memory(sim):
    status = sim.status()
    assert status.running and status.nodes == 1
    assert [p.name for p in status.processes] == list(COMPONENTS)
    assert all(p.running and p.log.is_file() for p in status.processes)
    assert 200 < status.rss_mib < 1500
    assert stat.S_IMODE(sim.kubeconfig.stat().st_mode) == 0o600


def test_cli_status_json(sim, cli):
    code, out, _ = cli("cluster", "status", "--name", sim.name, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["type"] == "sim" and data["state"] == "running" and data["kubeconfig"] == str(sim.kubeconfig)


def test_secrets_are_encrypted_in_etcd(sim, api, namespace):
    value = f"never-in-clear-{time.monotonic_ns()}"
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"v": value}})
    assert client.CoreV1Api(api).read_namespaced_secret("s", namespace).data["v"]  # the API still reads it
    stored = b"".join(f.read_bytes() for f in (sim.dir / "etcd").rglob("*") if f.is_file())
    assert b"k8s:enc:secretbox:v1:key1" in stored
    assert value.encode() not in stored
    assert stat.S_IMODE(os.stat(sim.dir / "pki" / "encryption.yaml").st_mode) == 0o600


# Lifecycle: these stop and delete the session's cluster; the `sim` fixture starts it again if a later
# test needs it.


def test_stopped_cluster_restarts_on_its_data(sim, api):
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "kept"}})
    assert sim.stop() is True
    assert sim.status().state == "stopped"
    restarted = sim.create()
    assert restarted.running
    again = ClusterConnection("sim", sim.name, sim.kubeconfig).api_client()  # new ports, same file
    assert client.CoreV1Api(again).read_namespace("kept").metadata.name == "kept"


def test_a_cluster_from_before_encryption_has_its_secrets_written_again(sim, api):
    client.CoreV1Api(api).create_namespaced_secret("default", {"metadata": {"name": "old"}, "stringData": {"v": "x"}})
    sim.stop()
    state = json.loads((sim.dir / "state.json").read_text())
    del state["secrets_encrypted"]
    (sim.dir / "state.json").write_text(json.dumps(state))
    said = Said()
    sim.create(progress=said)
    assert any(line.startswith("encrypted the ") for line in said.lines)
    again = ClusterConnection("sim", sim.name, sim.kubeconfig).api_client()
    assert client.CoreV1Api(again).read_namespaced_secret("old", "default").data["v"] == "eA=="


def test_delete_leaves_no_process_and_no_folder(sim):
    pids = [p.pid for p in sim.status().processes]
    assert sim.delete() is True
    assert not sim.dir.exists()
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]
    assert sim.status().state == "missing"
    assert sim.delete() is False


def _not_zombie(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------
# Without the real binaries


def _fake_tools(tmp_path: Path, etcd_script: str) -> dict[str, InstalledTool]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "etcd": etcd_script,
        "kube-apiserver": "exec sleep 60",
        "kube-controller-manager": "exec sleep 60",
        "kube-scheduler": "exec sleep 60",
        "kwok": "exec sleep 60",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    binaries = {name: bin_dir / name for name in scripts}
    return {
        "etcd": InstalledTool("etcd", "0", tmp_path, {"etcd": binaries["etcd"]}, False),
        "kubernetes": InstalledTool("kubernetes", "1.33.0", tmp_path, {b: binaries[b] for b in COMPONENTS[1:4]}, False),
        "kwok": InstalledTool("kwok", "0", tmp_path, {"kwok": binaries["kwok"]}, False),
    }


def test_a_component_that_exits_is_named_with_its_log(tmp_path, monkeypatch):
    tools = _fake_tools(tmp_path, 'echo "etcdmain: cannot access data directory: disk on fire" >&2; exit 1')
    monkeypatch.setattr("mims.cluster.local.install", lambda names, progress=None: tools)
    cluster = SimCluster("broken", root=tmp_path / "clusters")
    with pytest.raises(ClusterError) as failure:
        cluster.create()
    message = str(failure.value)
    assert "etcd exited while waiting for the API server to be ready" in message
    assert str(cluster.logs / "etcd.log") in message and "disk on fire" in message
    # the stand-in API server that was still running has been stopped; the logs stay for reading
    assert cluster.status().state == "stopped"
    assert (cluster.logs / "kube-apiserver.log").is_file()
    assert cluster.delete() is True


def test_private_files_are_owner_only(tmp_path, monkeypatch):
    tools = _fake_tools(tmp_path, "exit 1")
    monkeypatch.setattr("mims.cluster.local.install", lambda names, progress=None: tools)
    cluster = SimCluster("modes", root=tmp_path / "clusters")
    with pytest.raises(ClusterError):
        cluster.create()
    private = [
        cluster.kubeconfig,
        *cluster.dir.glob("kubeconfigs/*"),
        *cluster.dir.glob("pki/*.key"),
        cluster.dir / "pki" / "encryption.yaml",
    ]
    assert len(private) == 1 + 3 + 7 + 1
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in private} == {0o600}


def test_the_simulated_cluster_installs_no_node_binaries():
    _, tools = load_tools()
    assert not {"kubelet", "kube-proxy", "kube-router", "local-path-provisioner"} & {
        b for t in TOOLS for b in tools[t].binaries
    }


@pytest.mark.parametrize("name", ["", "Mims", "a_b", "-a", "x" * 41])
def test_bad_names_are_refused(name):
    with pytest.raises(UsageError):
        SimCluster(name)


@pytest.mark.parametrize("cpu, memory", [("0", "16Gi"), ("four", "16Gi"), ("4", "16"), ("4", "512Mi"), ("4", "1x")])
def test_bad_node_sizes_are_refused(tmp_path, cpu, memory):
    with pytest.raises(UsageError):
        SimCluster("sized", root=tmp_path).create(cpu=cpu, memory=memory)
    assert not (tmp_path / "sized").exists()


def test_status_of_a_missing_cluster(tmp_path):
    status = SimCluster("absent", root=tmp_path).status()
    assert status.state == "missing" and not status.running and status.api_url is None
    assert all(not p.running and p.pid is None for p in status.processes)
