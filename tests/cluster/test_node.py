"""The real node: one cluster for the module, with images imported from archives built by
tests/images (no registry here). Pods really run: users, read-only roots, logs and exec, DNS, the
API server from a pod, NetworkPolicies that block, the load balancer; then stop, start and a delete
that leaves the machine as it was."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from mims.cluster import ClusterConnection, NodeCluster, host
from mims.cluster.node import COREDNS_IMAGE, missing_packages
from mims.errors import ClusterError
from mims.toolchain import install
from tests.conftest import delete_nodes_of_killed_runs
from tests.conftest import wait_for as shared_wait_for
from tests.images.build import build

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a real node needs root"),
]

BUSYBOX = "docker.io/library/busybox:1.35.0"
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}


def wait_for(what: str, check, timeout: float = 90.0):
    """Polls through "not there yet" (the API's 404) and "not answering yet" (a refused connection)."""
    return shared_wait_for(what, check, timeout, ignoring=(client.ApiException, OSError))


@pytest.fixture(scope="module")
def machine_before() -> dict:
    if missing_packages():
        pytest.fail(f"a real node needs {', '.join(missing_packages())} (scripts/test installs them)")
    delete_nodes_of_killed_runs()
    return host.snapshot()


@pytest.fixture(scope="module")
def node(machine_before, tmp_path_factory):
    images = [build(name) for name in ("pause", "busybox", "coredns")]
    home = tmp_path_factory.mktemp("mims-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MIMS_HOME", str(home))
        cluster = NodeCluster("real")
        try:
            cluster.create()
            cluster.load_images(images)
            yield cluster
        finally:
            cluster.delete()


@pytest.fixture(scope="module")
def core(node) -> client.CoreV1Api:
    return client.CoreV1Api(ClusterConnection("node", node.name, node.kubeconfig).api_client())


@pytest.fixture(scope="module")
def kubectl(node):
    binary = install(["kubectl"])["kubectl"]["kubectl"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binary), f"--kubeconfig={node.kubeconfig}", *args], capture_output=True, text=True, check=check
        )

    return run


def namespace(core, name: str, labels: dict | None = None) -> str:
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted", **(labels or {})}}}
    )
    wait_for(f"namespace {name}'s ServiceAccount", lambda: core.read_namespaced_service_account("default", name))
    return name


def busybox_pod(core, ns: str, name: str, command: str, labels: dict | None = None) -> None:
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "main",
                        "image": BUSYBOX,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", command],
                        "securityContext": RESTRICTED,
                        "resources": RESOURCES,
                    }
                ],
            },
        },
    )
    wait_for(f"pod {ns}/{name} Running", lambda: core.read_namespaced_pod(name, ns).status.phase == "Running")


def test_the_node_is_ready_with_coredns_running(node, core):
    [item] = core.list_node().items
    assert item.metadata.name == node.node_name
    assert item.status.node_info.container_runtime_version.startswith("containerd://")
    wait_for(
        "CoreDNS Ready",
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
            for c in p.status.conditions or []
        ),
    )
    [dns] = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
    assert dns.spec.containers[0].image == COREDNS_IMAGE


def test_a_restricted_pod_runs_as_its_user_with_a_read_only_root(core, kubectl):
    ns = namespace(core, "users")
    busybox_pod(core, ns, "who", "echo started; sleep 3600")
    assert kubectl("exec", "-n", ns, "who", "--", "id", "-u").stdout.strip() == "65534"
    refused = kubectl("exec", "-n", ns, "who", "--", "touch", "/x", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr + refused.stdout
    assert "started" in kubectl("logs", "-n", ns, "who").stdout


def test_a_pod_resolves_services_and_reaches_the_api_server(core, kubectl):
    ns = namespace(core, "dns")
    busybox_pod(core, ns, "client", "sleep 3600")
    answer = kubectl("exec", "-n", ns, "client", "--", "nslookup", "kubernetes.default.svc.cluster.local")
    assert "10.96.0.1" in answer.stdout
    # Plain HTTP to the API server's TLS port: it answers 400, so the connection went through.
    http = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 kubernetes.default.svc 443'
    assert kubectl("exec", "-n", ns, "client", "--", "sh", "-c", http).stdout.startswith("HTTP/1.0 400")


def test_network_policies_block_and_allow(core, kubectl):
    server_ns, client_ns = namespace(core, "server"), namespace(core, "client", {"team": "a"})
    busybox_pod(core, server_ns, "web", "while true; do echo hi | nc -l -p 8080; done")
    ip = core.read_namespaced_pod("web", server_ns).status.pod_ip
    busybox_pod(core, client_ns, "caller", "sleep 3600")

    def reaches() -> bool:
        answer = kubectl(
            "exec", "-n", client_ns, "caller", "--", "sh", "-c", f"nc -w 2 {ip} 8080 </dev/null", check=False
        )
        return "hi" in answer.stdout

    assert wait_for("the server to answer", reaches, timeout=30)
    networking = client.NetworkingV1Api(core.api_client)
    networking.create_namespaced_network_policy(
        server_ns, {"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    )
    assert wait_for("the deny-all policy to block", lambda: not reaches(), timeout=30)
    networking.create_namespaced_network_policy(
        server_ns,
        {
            "metadata": {"name": "allow-team-a"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}], "ports": [{"port": 8080}]}
                ],
            },
        },
    )
    assert wait_for("the allow rule to let it through", reaches, timeout=30)


def test_a_load_balancer_service_answers_on_the_node_address(node, core):
    ns = namespace(core, "lb")
    busybox_pod(core, ns, "web", "while true; do echo hello-from-pod | nc -l -p 8080; done")
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": "web"},
                "ports": [{"port": 18080, "targetPort": 8080}],
            },
        },
    )
    address = wait_for(
        "the load balancer address", lambda: core.read_namespaced_service_status("web", ns).status.load_balancer.ingress
    )[0].ip
    assert address == node.node_ip()

    def answer() -> bytes:
        with socket.create_connection((address, 18080), timeout=3) as s:
            return s.recv(100)

    assert wait_for("an answer through the load balancer", lambda: b"hello-from-pod" in answer(), timeout=30)


def test_a_claim_gets_a_volume_whose_data_outlives_its_pod(node, core, kubectl):
    ns = namespace(core, "volumes")
    core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
        },
    )

    def pod_with_volume(name: str) -> dict:
        return {
            "metadata": {"name": name},
            "spec": {
                "automountServiceAccountToken": False,
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [
                    {
                        "name": "main",
                        "image": BUSYBOX,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", "sleep 3600"],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "securityContext": RESTRICTED,
                        "resources": RESOURCES,
                    }
                ],
            },
        }

    core.create_namespaced_pod(ns, pod_with_volume("writer"))
    wait_for("the writer Running", lambda: core.read_namespaced_pod("writer", ns).status.phase == "Running")
    kubectl("exec", "-n", ns, "writer", "--", "sh", "-c", "echo kept > /data/row")
    core.delete_namespaced_pod("writer", ns, grace_period_seconds=0)
    wait_for("the writer gone", lambda: not core.list_namespaced_pod(ns).items)
    core.create_namespaced_pod(ns, pod_with_volume("reader"))
    wait_for("the reader Running", lambda: core.read_namespaced_pod("reader", ns).status.phase == "Running")
    assert kubectl("exec", "-n", ns, "reader", "--", "cat", "/data/row").stdout == "kept\n"
    assert str(node.dir / "volumes") in core.list_persistent_volume().items[0].spec.host_path.path


def test_pods_run_again_after_stop_and_start(node, core):
    ns = namespace(core, "restart")
    busybox_pod(core, ns, "kept", "sleep 3600")
    assert node.stop() is True
    assert not any(Path(f"/proc/{p.pid}").exists() for p in node.status().processes if p.pid)
    node.create()
    again = client.CoreV1Api(ClusterConnection("node", node.name, node.kubeconfig).api_client())  # new ports
    wait_for("the pod Running again", lambda: again.read_namespaced_pod("kept", ns).status.phase == "Running")


def test_delete_leaves_the_machine_as_it_was(node, machine_before):
    pids = [p.pid for p in node.status().processes if p.pid]
    assert node.delete() is True
    assert not node.dir.exists()
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    after = host.snapshot()
    for key in ("sysctls", "iptables", "nft_tables", "ipsets", "links", "paths", "cgroups"):
        assert after[key] == machine_before[key], key
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.dir) not in mounts
    assert not shutil.which("containerd-shim-runc-v2") or not [
        p for p in Path("/proc").iterdir() if p.name.isdigit() and str(node.containerd_socket).encode() in _cmdline(p)
    ]


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_no_node_starts_beside_a_running_kubelet(fake_kubelet, tmp_path):
    """Run after `delete` (this module's last test): the fake kubelet is the machine's only one."""
    proc, _ = fake_kubelet
    with pytest.raises(ClusterError, match=rf"a kubelet already runs on this machine: {proc.pid} \("):
        NodeCluster("beside", tmp_path / "clusters").create()
    assert not (tmp_path / "clusters" / "beside" / "state.json").exists()


def test_no_node_starts_on_the_mounts_of_a_node_that_did_not_stop(tmp_path):
    """A node whose processes were killed leaves its mounts (and iptables chains): a new node is
    refused with the command that deletes the old one."""
    dead = tmp_path / "killed-home" / "clusters" / "old" / "kubelet"
    dead.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(dead)], check=True)
    try:
        with pytest.raises(ClusterError, match=rf"MIMS_HOME={tmp_path}/killed-home mims cluster delete --name old"):
            NodeCluster("new", tmp_path / "clusters").create()
    finally:
        subprocess.run(["umount", str(dead)], check=True)
    assert not (tmp_path / "clusters" / "new" / "state.json").exists()
