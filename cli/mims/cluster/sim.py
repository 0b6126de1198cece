"""A simulated Kubernetes cluster on this machine: a real etcd, kube-apiserver, controller-manager and
scheduler, with kwok standing in for the kubelets. Everything the API does is real (admission, RBAC,
Pod Security, scheduling against the node's size, controllers, garbage collection); containers never
run, kwok only reports them Running. ~550 MiB and a few seconds to start, no container runtime.
Processes, folder and lifecycle: `mims.cluster.local`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mims.charts.quantity import bytes_of, cpu_millicores
from mims.cluster import controlplane
from mims.cluster.controlplane import ControlPlane, condition
from mims.cluster.local import LocalCluster, LocalStatus, elapsed
from mims.cluster.processes import free_ports
from mims.errors import UsageError
from mims.progress import SILENT, Progress
from mims.toolchain import InstalledTool

# Start order; stopped in reverse.
COMPONENTS = (*controlplane.COMPONENTS, "kwok")
TOOLS = ("etcd", "kubernetes", "kwok")
STAGES = Path(__file__).with_name("kwok-stages.yaml")
POD_CIDR = "10.244.0.0/24"  # nodeipam is off, so the node's podCIDR is set here; kwok hands out pod IPs from it
NODE_NAME = "kwok-node-0"
DEFAULT_CPU = "4"  # the minimal-50k node: the scheduler enforces the budget's requests for real
DEFAULT_MEMORY = "16Gi"

# The volume stages provision PVCs of this class only; as the default class it is filled into every
# PVC without a storageClassName (the charts set none).
STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "kwok-volume", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kwok.x-k8s.io/volume",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}


class SimCluster(LocalCluster):
    TYPE = "sim"
    LABEL = "simulated cluster"
    CREATE_FLAG = "--sim"
    COMPONENTS = COMPONENTS
    TOOLS = TOOLS

    def create(self, *, cpu: str | None = None, memory: str | None = None, progress: Progress = SILENT) -> LocalStatus:
        """Starts the cluster and returns when a pod could be created: the node is Ready and the
        `default` ServiceAccount exists. `cpu` and `memory` size the node of a new cluster."""
        node = {"cpu": cpu or DEFAULT_CPU, "memory": memory or DEFAULT_MEMORY}
        _check_size(node["cpu"], node["memory"])
        return self._create({"node": node, "resized": bool(cpu or memory)}, progress)

    def _settings(self, state: dict, asked: dict[str, Any], progress: Progress) -> dict[str, Any]:
        node = state.get("node")
        if self._pki.is_dir() and node:
            if asked["resized"] and node != asked["node"]:
                progress.say(f"the node keeps the size it was created with ({node['cpu']} CPU, {node['memory']})")
            return {**asked, "node": node}
        return asked

    def _start(self, tools: dict[str, InstalledTool], settings: dict[str, Any], progress: Progress) -> None:
        node = settings["node"]
        etcd_client, etcd_peer, api_port, kwok_port = free_ports(4)
        plane = ControlPlane(self.dir, self._pki, "127.0.0.1", api_port, etcd_client, etcd_peer)
        self.write_kubeconfig(self.kubeconfig, plane.api_url, "admin")
        for user in ("controller-manager", "scheduler", "kwok"):
            self.write_kubeconfig(self.kubeconfigs / f"{user}.kubeconfig", plane.api_url, user)
        state = self.new_state(
            plane.api_url,
            node=node,
            ports={"etcd-client": etcd_client, "etcd-peer": etcd_peer, "kube-apiserver": api_port, "kwok": kwok_port},
        )
        commands = plane.commands(tools, self.kubeconfigs)
        commands["kwok"] = [
            tools["kwok"]["kwok"],
            f"--kubeconfig={self.kubeconfigs / 'kwok.kubeconfig'}",
            f"--config={STAGES}",
            # Only nodes mims made for kwok: a real kubelet beside it keeps its own node.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            f"--node-port={kwok_port}",
            f"--server-address=127.0.0.1:{kwok_port}",
            f"--tls-cert-file={self._pki / 'kwok.crt'}",
            f"--tls-private-key-file={self._pki / 'kwok.key'}",
            "--node-lease-duration-seconds=40",
            "--v=WARN",
        ]
        api, run = self.api(state), self.supervisor
        started = time.monotonic()
        progress.say("starting etcd and kube-apiserver")
        for name in ("etcd", "kube-apiserver"):
            run.spawn(name, commands[name], state)
        run.wait("the API server to be ready (/readyz)", "kube-apiserver", state, api.ready)
        progress.say(
            f"API server ready at {plane.api_url} after {elapsed(started)}; "
            "starting controller-manager, scheduler and kwok"
        )
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            run.spawn(name, commands[name], state)
        api.ensure("/apis/storage.k8s.io/v1/storageclasses", STORAGE_CLASS)
        api.ensure("/api/v1/nodes", _node(node, tools["kubernetes"].version))
        run.wait(
            f"node {NODE_NAME} to be Ready",
            "kwok",
            state,
            lambda: condition(api.get(f"/api/v1/nodes/{NODE_NAME}")[1], "Ready"),
        )
        run.wait(
            "the `default` ServiceAccount",
            "kube-controller-manager",
            state,
            lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        )
        progress.say(
            f"{self.label} ready after {elapsed(started)} (node {NODE_NAME}: {node['cpu']} CPU, {node['memory']})"
        )


def _node(size: dict[str, str], kubernetes_version: str) -> dict:
    """kwok creates no Node (kwokctl does); no taint, so unmodified charts schedule on it."""
    resources = {"cpu": size["cpu"], "memory": size["memory"], "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": f"v{kubernetes_version}",
                "containerRuntimeVersion": "kwok",
            },
        },
    }


def _check_size(cpu: str, memory: str) -> None:
    try:
        ok = cpu_millicores(cpu) > 0
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"node cpu {cpu!r}: expected a CPU quantity such as 4 or 3500m")
    try:
        ok = bytes_of(memory) >= 2**30
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"node memory {memory!r}: expected a memory quantity of at least 1Gi, such as 16Gi")
