"""A real single-node Kubernetes cluster on this Linux machine: the control plane of the simulated
cluster, plus containerd (from the system's packages), kubelet and kube-proxy (iptables mode) at the
control plane's version, and kube-router as the NetworkPolicy firewall, all supervised as host
processes; CoreDNS runs as a pod. Pods really run: probes, users, read-only roots, NetworkPolicies.

Needs root and Linux. Everything it changes outside its folder (kernel settings, iptables, links,
cgroups, mounts) is recorded before its first start and put back by `delete` (mims.cluster.host).
Facts about running these parts on a small VM (cgroup v1, no CAP_SYS_RESOURCE, no IPVS) are in
docs/cluster.md."""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from mims.cluster import controlplane, host, pki
from mims.cluster.controlplane import ControlPlane, condition
from mims.cluster.local import LocalCluster, LocalStatus, elapsed, stored_type
from mims.cluster.processes import free_ports
from mims.errors import ClusterError
from mims.progress import SILENT, Progress
from mims.toolchain import InstalledTool

COMPONENTS = (
    *controlplane.COMPONENTS,
    "containerd",
    "kubelet",
    "kube-proxy",
    "kube-router",
    "loadbalancer",
    "local-path-provisioner",
)
TOOLS = ("etcd", "kubernetes", "kubernetes-node", "kube-router", "local-path-provisioner")
POD_CIDR = "10.244.0.0/24"
DNS_IP = "10.96.0.10"
BRIDGE = "mims0"
ADDONS = Path(__file__).with_name("node-addons.yaml")
CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # kubeadm 1.33's PauseVersion (cmd/kubeadm/app/constants)
# CoreDNS's own image (coredns/coredns on Docker Hub) of the release the toolchain builds; node-addons.yaml
# follows its Dockerfile.
COREDNS_IMAGE = "docker.io/coredns/coredns:1.15.0"
# The volume helper pods' shell (upstream's template says `busybox`, unpinned).
BUSYBOX_IMAGE = "docker.io/library/busybox:1.35.0"

# What must be on the machine, with the Debian package that has it.
PACKAGES = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "ip6tables": "iptables",
    "ipset": "ipset",
    "conntrack": "conntrack",
    "ip": "iproute2",
    "mount": "mount",
}
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
INSTALL_COMMAND = (
    "apt-get install -y --no-install-recommends containerd runc containernetworking-plugins iptables ipset conntrack"
)


class NodeCluster(LocalCluster):
    TYPE = "node"
    LABEL = "real-node cluster"
    CREATE_FLAG = "--node"
    COMPONENTS = COMPONENTS
    TOOLS = TOOLS

    def __init__(self, name: str = "mims", root: Path | None = None) -> None:
        super().__init__(name, root)
        self.node_name = f"{name}-node"
        self.containerd_dir = self.dir / "containerd"
        self.containerd_socket = self.containerd_dir / "containerd.sock"
        self.kubelet_dir = self.dir / "kubelet"
        self.cni_dir = self.dir / "cni"

    def create(
        self, *, node_ip: str | None = None, install_packages: bool = False, progress: Progress = SILENT
    ) -> LocalStatus:
        """Starts the node and returns when it is Ready and a pod could be created (CoreDNS's pod starts
        once its image is there). Missing system packages are an error naming the command that
        installs them, unless `install_packages`."""
        return self._create({"node_ip": node_ip, "install_packages": install_packages}, progress)

    def node_ip(self) -> str | None:
        """The address the node was started on (its API server, kubelet and load balancer use it)."""
        return self._read_state().get("node_ip")

    def load_images(self, archives: list[Path], progress: Progress = SILENT) -> list[str]:
        """Imports OCI or docker image archives into the node's containerd (namespace k8s.io, where
        kubelet looks), for nodes that cannot pull; returns the image names imported."""
        if self.status().state != "running":
            raise ClusterError(f"{self.label} is not running; start it with `mims cluster create --node`")
        names: list[str] = []
        for archive in archives:
            if not archive.is_file():
                raise ClusterError(f"{archive}: no such image archive")
            done = subprocess.run(
                [*self._ctr(), "image", "import", "--all-platforms", str(archive)], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise ClusterError(f"{archive}: containerd could not import it: {done.stderr.strip()}")
            imported = list(
                dict.fromkeys(line.split()[1] for line in done.stdout.splitlines() if line.startswith("unpacking "))
            )
            progress.say(f"{archive.name}: {', '.join(imported) or 'no image name in the archive'}")
            names += imported
        return names

    # ----------------------------------------------------------------------------------------------

    def _settings(self, state: dict, asked: dict[str, Any], progress: Progress) -> dict[str, Any]:
        node_ip = state.get("node_ip") or asked["node_ip"] or _default_address()
        return {**asked, "node_ip": node_ip}

    def _prepare(self, settings: dict[str, Any], progress: Progress) -> None:
        if platform.system() != "Linux":
            raise ClusterError("a real node needs Linux (containerd, runc, iptables); use --sim elsewhere")
        if os.geteuid() != 0:
            raise ClusterError("a real node needs root (containers, iptables, mounts); run mims as root or use --sim")
        other = self._other_running_node()
        if other:
            raise ClusterError(
                f"real-node cluster `{other}` already runs on this machine (one bridge, one pod range, one "
                f"kubelet per machine); stop it first: mims cluster stop --name {other}"
            )
        kubelets = host.running_kubelets()
        if kubelets:
            raise ClusterError(
                f"a kubelet already runs on this machine: {', '.join(kubelets)} (another real node, of "
                "another MIMS_HOME, or a Kubernetes installed here); a second one would share its cgroups, "
                "pod network and iptables chains. Stop it first, or use --sim"
            )
        for folder in host.node_folders_with_mounts():
            if folder != self.dir:
                raise ClusterError(
                    f"a real node that did not stop cleanly left its mounts, pods and iptables chains on this "
                    f"machine ({folder}); a new node would inherit its rules. Delete it first: "
                    f"MIMS_HOME={folder.parent.parent} mims cluster delete --name {folder.name} --yes"
                )
        missing = missing_packages()
        if missing:
            if not settings["install_packages"]:
                raise ClusterError(
                    f"a real node needs {', '.join(missing)}; install with: {INSTALL_COMMAND} "
                    "(or pass --install-packages)"
                )
            progress.say(f"installing {', '.join(missing)}")
            for argv in (["apt-get", "update"], INSTALL_COMMAND.split()):
                done = subprocess.run(
                    argv, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                )
                if done.returncode != 0:
                    raise ClusterError(f"`{' '.join(argv)}` failed: {done.stderr.strip()[-500:]}")

    def _other_running_node(self) -> str | None:
        for state_file in sorted(self.root.glob("*/state.json")):
            name = state_file.parent.name
            if name != self.name and stored_type(name, self.root) == "node" and NodeCluster(name, self.root).alive():
                return name
        return None

    def _generate_pki(self, settings: dict[str, Any]) -> None:
        ip = settings["node_ip"]
        names = (self.node_name, socket.gethostname(), "localhost")
        node_pki = (
            *pki.CLIENTS[:3],  # admin, controller-manager, scheduler
            pki.Identity(
                "kubelet", f"system:node:{self.node_name}", ("system:nodes",), serves=(names, (ip, "127.0.0.1"))
            ),
            pki.Identity("kube-proxy", "system:kube-proxy"),
            pki.Identity("kube-router", "mims:kube-router"),
            pki.Identity("loadbalancer", "mims:loadbalancer"),
            pki.Identity("local-path-provisioner", "mims:local-path-provisioner"),
            pki.Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
        )
        pki.generate(self._pki, node_pki, apiserver_ips=(*pki.APISERVER_IPS, ip))

    def _start(self, tools: dict[str, InstalledTool], settings: dict[str, Any], progress: Progress) -> None:
        node_ip = settings["node_ip"]
        _check_free_ranges()
        before = self._read_state().get("host") or host.snapshot()
        etcd_client, etcd_peer = free_ports(2)
        api_port, kubelet_port = free_ports(2, node_ip)
        proxy_health, proxy_metrics, kubelet_health = free_ports(3)
        plane = ControlPlane(self.dir, self._pki, node_ip, api_port, etcd_client, etcd_peer, kubelets=True)
        self.write_kubeconfig(self.kubeconfig, plane.api_url, "admin")
        users = ("controller-manager", "scheduler", "kubelet", "kube-proxy", "kube-router", "local-path-provisioner")
        for user in users:
            self.write_kubeconfig(self.kubeconfigs / f"{user}.kubeconfig", plane.api_url, user)
        state = self.new_state(
            plane.api_url,
            host=before,
            node_ip=node_ip,
            node=_node_size(),
            ports={
                "etcd-client": etcd_client,
                "etcd-peer": etcd_peer,
                "kube-apiserver": api_port,
                "kubelet": kubelet_port,
            },
        )
        for name, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1")):
            host.set_sysctl(name, value)
        configs = self._write_configs(node_ip, kubelet_port, kubelet_health, proxy_health, proxy_metrics)
        commands = plane.commands(tools, self.kubeconfigs)
        node = tools["kubernetes-node"]
        commands |= {
            "containerd": ["containerd", f"--config={configs['containerd']}"],
            "kubelet": [
                node["kubelet"],
                f"--config={configs['kubelet']}",
                f"--kubeconfig={self.kubeconfigs / 'kubelet.kubeconfig'}",
                f"--root-dir={self.kubelet_dir}",
                f"--cert-dir={self.kubelet_dir / 'pki'}",
                f"--node-ip={node_ip}",
                f"--hostname-override={self.node_name}",
                "--v=1",
            ],
            "kube-proxy": [node["kube-proxy"], f"--config={configs['kube-proxy']}", "--v=1"],
            "kube-router": [
                tools["kube-router"]["kube-router"],
                f"--kubeconfig={self.kubeconfigs / 'kube-router.kubeconfig'}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--enable-cni=false",
                "--enable-pod-egress=false",
                f"--hostname-override={self.node_name}",
                "--health-port=0",
                "--v=1",
            ],
            "loadbalancer": [sys.executable, "-m", "mims.cluster.loadbalancer", self._pki, plane.api_url, node_ip],
            "local-path-provisioner": [
                tools["local-path-provisioner"]["local-path-provisioner"],
                "start",
                f"--kubeconfig={self.kubeconfigs / 'local-path-provisioner.kubeconfig'}",
                "--namespace=local-path-storage",  # its ConfigMap local-path-config holds config and scripts
                "--service-account-name=local-path-provisioner-service-account",
            ],
        }
        api, run = self.api(state), self.supervisor
        started = time.monotonic()
        progress.say("starting etcd, kube-apiserver and containerd")
        for name in ("etcd", "kube-apiserver", "containerd"):
            run.spawn(name, commands[name], state)
        run.wait("the API server to be ready (/readyz)", "kube-apiserver", state, api.ready)
        run.wait("containerd's socket", "containerd", state, self.containerd_socket.exists)
        progress.say(f"API server ready at {plane.api_url} after {elapsed(started)}; starting the node")
        for name in ("kube-controller-manager", "kube-scheduler"):
            run.spawn(name, commands[name], state)
        (self.dir / "volumes").mkdir(exist_ok=True)
        for obj in _addons(self.dir / "volumes"):
            api.ensure(_collection(obj), obj)
        for name in ("kubelet", "kube-proxy", "loadbalancer"):
            run.spawn(name, commands[name], state, env=_python_path() if name == "loadbalancer" else None)
        run.wait(
            f"node {self.node_name} to be Ready",
            "kubelet",
            state,
            lambda: condition(api.get(f"/api/v1/nodes/{self.node_name}")[1], "Ready"),
        )
        for name in ("kube-router", "local-path-provisioner"):  # both need the Node to exist
            run.spawn(name, commands[name], state)
        run.wait(
            "the `default` ServiceAccount",
            "kube-controller-manager",
            state,
            lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        )
        progress.say(f"{self.label} ready after {elapsed(started)} (node {self.node_name} at {node_ip})")

    def _write_configs(
        self, node_ip: str, kubelet_port: int, kubelet_health: int, proxy_health: int, proxy_metrics: int
    ) -> dict[str, Path]:
        configs = self.dir / "config"
        configs.mkdir(exist_ok=True)
        for folder in (self.containerd_dir, self.cni_dir / "net.d", self.kubelet_dir, self.dir / "pod-logs"):
            folder.mkdir(parents=True, exist_ok=True)
        p = self._pki
        files = {
            "containerd": (configs / "containerd.toml", _containerd_toml(self.containerd_dir, self.cni_dir)),
            "kubelet": (
                configs / "kubelet.yaml",
                yaml.safe_dump(
                    {
                        "apiVersion": "kubelet.config.k8s.io/v1beta1",
                        "kind": "KubeletConfiguration",
                        "address": node_ip,
                        "port": kubelet_port,
                        "readOnlyPort": 0,
                        "healthzBindAddress": "127.0.0.1",
                        "healthzPort": kubelet_health,
                        "cgroupDriver": "cgroupfs",  # containerd runs runc with SystemdCgroup=false
                        "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
                        "failSwapOn": False,
                        # kubelet sets kernel.panic, panic_on_oops and vm.overcommit_memory itself;
                        # `true` makes it exit instead. host.restore puts them back.
                        "protectKernelDefaults": False,
                        "authentication": {
                            "anonymous": {"enabled": False},
                            "webhook": {"enabled": True},
                            "x509": {"clientCAFile": str(p / "ca.crt")},
                        },
                        "authorization": {"mode": "Webhook"},
                        "tlsCertFile": str(p / "kubelet.crt"),
                        "tlsPrivateKeyFile": str(p / "kubelet.key"),
                        "clusterDNS": [DNS_IP],
                        "clusterDomain": "cluster.local",
                        "podLogsDir": str(self.dir / "pod-logs"),
                        # A small disk must not evict the platform, and images imported without a
                        # registry cannot come back once garbage-collected.
                        "evictionHard": {
                            "memory.available": "100Mi",
                            "nodefs.available": "1%",
                            "imagefs.available": "1%",
                            "nodefs.inodesFree": "1%",
                        },
                        "imageGCHighThresholdPercent": 100,
                        "imageGCLowThresholdPercent": 99,
                        "serializeImagePulls": False,
                        "registerNode": True,
                    },
                    sort_keys=False,
                ),
            ),
            "kube-proxy": (
                configs / "kube-proxy.yaml",
                yaml.safe_dump(
                    {
                        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                        "kind": "KubeProxyConfiguration",
                        "clientConnection": {"kubeconfig": str(self.kubeconfigs / "kube-proxy.kubeconfig")},
                        "mode": "iptables",  # the kernel has no IPVS
                        "clusterCIDR": POD_CIDR,
                        "hostnameOverride": self.node_name,
                        "healthzBindAddress": f"127.0.0.1:{proxy_health}",
                        "metricsBindAddress": f"127.0.0.1:{proxy_metrics}",
                        # 0: leave the host's conntrack settings as they are
                        "conntrack": {
                            "maxPerCore": 0,
                            "min": 0,
                            "tcpEstablishedTimeout": "0s",
                            "tcpCloseWaitTimeout": "0s",
                        },
                        # NodePorts on 127.0.0.1 would need net.ipv4.conf.all.route_localnet=1
                        "iptables": {"localhostNodePorts": False},
                    },
                    sort_keys=False,
                ),
            ),
            "cni": (self.cni_dir / "net.d" / "10-mims.conflist", json.dumps(_cni_conflist(self.cni_dir), indent=2)),
        }
        for path, text in files.values():
            path.write_text(text)
        return {name: path for name, (path, _) in files.items()}

    def _ctr(self) -> list[str]:
        return ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io"]

    def _after_stop(self, state: dict) -> None:
        """Containers outlive containerd (their shims keep them): they stop with the node. Their mounts
        go too, so the folder can be removed and kubelet starts them anew on the next start."""
        host.kill_pod_processes(str(self.containerd_socket))
        problems: list[str] = []
        host.unmount_under([self.dir], problems)

    def _before_delete(self, state: dict) -> None:
        before = state.get("host")
        if not before:
            return
        problems = host.restore(before, [self.dir], str(self.containerd_socket))
        if problems:
            raise ClusterError(f"{self.label}: could not put the machine back as it was: " + "; ".join(problems))


def _python_path() -> dict[str, str]:
    """The load balancer runs this mims's own package, wherever it was imported from."""
    package_root = str(Path(__file__).resolve().parents[2])
    return {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH", "")]))}


def missing_packages() -> list[str]:
    """Debian packages whose programs a real node needs and this machine lacks."""
    missing = {package for program, package in PACKAGES.items() if not shutil.which(program)}
    if not all((CNI_BIN / plugin).exists() for plugin in CNI_PLUGINS):
        missing.add("containernetworking-plugins")
    return sorted(missing)


def _default_address() -> str:
    """The address this machine uses to reach others (its default route); a UDP connect sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: routed by the default route, never sent
            address = probe.getsockname()[0]
        except OSError as exc:
            raise ClusterError(f"cannot find this machine's address ({exc}); pass --node-ip") from exc
    if address.startswith("127."):
        raise ClusterError("this machine has no address but 127.0.0.1; pass --node-ip")
    return address


def _check_free_ranges() -> None:
    """The pod and service ranges must not be networks this machine already routes."""
    done = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True)
    ours = [ipaddress.ip_network(POD_CIDR), ipaddress.ip_network(controlplane.SERVICE_CIDR)]
    for line in done.stdout.splitlines():
        target = line.split()[0]
        if target == "default" or f"dev {BRIDGE}" in line:
            continue
        try:
            network = ipaddress.ip_network(target, strict=False)
        except ValueError:
            continue
        clash = next((o for o in ours if o.overlaps(network)), None)
        if clash is not None:
            raise ClusterError(f"this machine already routes {network}, which overlaps the node's range {clash}")


def _node_size() -> dict[str, str]:
    cpus = os.cpu_count() or 1
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpu": str(cpus), "memory": f"{pages // 2**20}Mi"}


def _containerd_toml(root: Path, cni: Path) -> str:
    """containerd 1.6 (Debian 12) CRI settings; restrict_oom_score_adj because these machines lack
    CAP_SYS_RESOURCE (runc fails with `can't get final child's PID from pipe: EOF` otherwise)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{root / "containerd.sock"}"

[ttrpc]
  address = "{root / "containerd.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni / "net.d"}"
"""


def _cni_conflist(cni: Path) -> dict:
    return {
        "cniVersion": "0.4.0",
        "name": "mims",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(cni / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _collection(obj: dict) -> str:
    group_version = obj["apiVersion"]
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    namespace = obj["metadata"].get("namespace")
    plural = {"StorageClass": "storageclasses"}.get(obj["kind"], obj["kind"].lower() + "s")
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def _addons(volumes: Path) -> list[dict]:
    """Objects every node gets (node-addons.yaml): read access for kube-router (the firewall-only
    subset of upstream's ClusterRole, kube-router v2.1.0 daemonset/generic-kuberouter.yaml), the load
    balancer's rights, CoreDNS as kubeadm 1.33 deploys it (cmd/kubeadm/app/phases/addons/dns/
    manifests.go), and local-path-provisioner's namespace, rights, configuration and StorageClass."""
    text = ADDONS.read_text()
    for key, value in {
        "@COREDNS_IMAGE@": COREDNS_IMAGE,
        "@BUSYBOX_IMAGE@": BUSYBOX_IMAGE,
        "@DNS_IP@": DNS_IP,
        "@VOLUMES_DIR@": str(volumes),
    }.items():
        text = text.replace(key, value)
    return list(yaml.safe_load_all(text))
