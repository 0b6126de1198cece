"""A simulated Kubernetes cluster on this machine: a real etcd, kube-apiserver, controller-manager and
scheduler, with kwok standing in for the kubelets. Everything the API does is real (admission, RBAC,
Pod Security, scheduling against the node's size, controllers, garbage collection); containers never
run, kwok only reports them Running. ~550 MiB and a few seconds to start, no container runtime.

State lives in `<clusters_dir>/<name>/`: pki/, kubeconfig (admin), kubeconfigs/ (components), etcd/
(data), logs/<component>.log and state.json (ports, process ids, node size). Processes run in their
own sessions, so they outlive the `mims` process that started them and a Ctrl-C does not stop them
half-way; the next `create` restarts them on the same data when they are gone (after a reboot)."""

from __future__ import annotations

import base64
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from mims import paths
from mims.charts.quantity import bytes_of, cpu_millicores
from mims.cluster import pki
from mims.errors import ClusterError, UsageError
from mims.progress import SILENT, Progress
from mims.toolchain import InstalledTool, install

# Start order; stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
TOOLS = ("etcd", "kubernetes", "kwok")
STAGES = Path(__file__).with_name("kwok-stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/24"  # nodeipam is off, so the node's podCIDR is set here; kwok hands out pod IPs from it
NODE_NAME = "kwok-node-0"
DEFAULT_CPU = "4"  # the minimal-50k node: the scheduler enforces the budget's requests for real
DEFAULT_MEMORY = "16Gi"
READY_TIMEOUT = 90.0  # generous: a loaded 2-core CI machine
STOP_TIMEOUT = 10.0
TAIL_LINES = 15
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")

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

# Children started by this process, so they are reaped (not left as zombies) when they stop.
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    running: bool
    rss_mib: float | None
    log: Path


SimState = Literal["missing", "stopped", "running", "degraded"]


@dataclass(frozen=True)
class SimStatus:
    """`state`: missing (never created or deleted), stopped (no process runs), running (all do),
    degraded (some do; `create` restarts them)."""

    name: str
    directory: Path
    state: SimState
    kubeconfig: Path
    api_url: str | None
    node_cpu: str | None
    node_memory: str | None
    nodes: int | None
    rss_mib: float | None
    processes: tuple[ProcessStatus, ...]

    @property
    def running(self) -> bool:
        return self.state == "running"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["directory"], data["kubeconfig"] = str(self.directory), str(self.kubeconfig)
        data["processes"] = [{**asdict(p), "log": str(p.log)} for p in self.processes]
        return data


class SimCluster:
    def __init__(self, name: str = "mims", root: Path | None = None) -> None:
        if not _NAME.match(name):
            raise UsageError(f"cluster name {name!r}: use 1-40 lowercase letters, digits and dashes")
        self.name = name
        self.root = root or paths.clusters_dir()
        self.dir = self.root / name
        self.kubeconfig = self.dir / "kubeconfig"
        self.logs = self.dir / "logs"
        self._state_file = self.dir / "state.json"
        self._pki = self.dir / "pki"

    def exists(self) -> bool:
        """Whether the cluster's folder is there (stopped or running): something to delete."""
        return self.dir.exists()

    # ----------------------------------------------------------------------------------------------
    # Lifecycle

    def create(self, *, cpu: str | None = None, memory: str | None = None, progress: Progress = SILENT) -> SimStatus:
        """Starts the cluster and returns when a pod could be created: the node is Ready and the
        `default` ServiceAccount exists. A running cluster is returned as it is; a stopped one is
        restarted on its data. `cpu` and `memory` size the node of a new cluster."""
        node = {"cpu": cpu or DEFAULT_CPU, "memory": memory or DEFAULT_MEMORY}
        _check_size(node["cpu"], node["memory"])
        with self._locked(progress):
            state = self._read_state()
            if self._pki.is_dir() and state.get("node"):
                if (cpu or memory) and state["node"] != node:
                    progress.say(
                        f"the node keeps the size it was created with ({state['node']['cpu']} CPU, "
                        f"{state['node']['memory']})"
                    )
                node = state["node"]
            alive = self._alive(state)
            if len(alive) == len(COMPONENTS) and self._api(state).ready():
                progress.say(f"simulated cluster `{self.name}` is already running")
                return self.status()
            if alive:
                progress.say(f"stopping the {len(alive)} of {len(COMPONENTS)} processes still running")
                _terminate(alive)
            tools = install(TOOLS, progress=progress)
            if not self._pki.is_dir():
                progress.say("generating certificates")
                self.dir.mkdir(parents=True, exist_ok=True)
                pki.generate(self._pki)
            try:
                self._start(tools, node, progress)
            except BaseException:
                _terminate(self._alive(self._read_state()))
                raise
        return self.status()

    def stop(self) -> bool:
        """Stops the processes and keeps the data; True when anything was running."""
        with self._locked(SILENT):
            alive = self._alive(self._read_state())
            _terminate(alive)
            return bool(alive)

    def delete(self) -> bool:
        """Stops the processes and removes the cluster's folder; True when there was a cluster."""
        with self._locked(SILENT):
            _terminate(self._alive(self._read_state()))
            existed = self.dir.exists()
            shutil.rmtree(self.dir, ignore_errors=True)
            return existed

    def node_size(self) -> tuple[str, str] | None:
        """(cpu, memory) of the node it was created with, from its state file: no process or API
        call, for checks on every deploy."""
        node = self._read_state().get("node")
        return (node["cpu"], node["memory"]) if node else None

    def status(self) -> SimStatus:
        state = self._read_state()
        processes = []
        for name in COMPONENTS:
            entry = state.get("processes", {}).get(name)
            running = bool(entry) and _is_running(entry["pid"], entry["binary"])
            processes.append(
                ProcessStatus(
                    name,
                    entry["pid"] if entry else None,
                    running,
                    _rss_mib(entry["pid"]) if running else None,
                    self.logs / f"{name}.log",
                )
            )
        up = sum(p.running for p in processes)
        kind: SimState
        if not self.dir.exists():
            kind = "missing"
        elif up == len(COMPONENTS):
            kind = "running"
        else:
            kind = "degraded" if up else "stopped"
        nodes = None
        if any(p.running for p in processes if p.name == "kube-apiserver"):
            code, body = self._api(state).get("/api/v1/nodes", timeout=3)
            nodes = len(body.get("items", [])) if code == 200 and isinstance(body, dict) else None
        rss = [p.rss_mib for p in processes if p.rss_mib is not None]
        node = state.get("node") or {}
        return SimStatus(
            name=self.name,
            directory=self.dir,
            state=kind,
            kubeconfig=self.kubeconfig,
            api_url=state.get("api_url") if up else None,
            node_cpu=node.get("cpu"),
            node_memory=node.get("memory"),
            nodes=nodes,
            rss_mib=round(sum(rss), 1) if rss else None,
            processes=tuple(processes),
        )

    # ----------------------------------------------------------------------------------------------
    # Starting

    def _start(self, tools: dict[str, InstalledTool], node: dict[str, str], progress: Progress) -> None:
        etcd_client, etcd_peer, api_port, kwok_port = _free_ports(4)
        api_url = f"https://127.0.0.1:{api_port}"
        kubeconfigs = self.dir / "kubeconfigs"
        kubeconfigs.mkdir(exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self._write_kubeconfig(self.kubeconfig, api_url, "admin")
        for user in ("controller-manager", "scheduler", "kwok"):
            self._write_kubeconfig(kubeconfigs / f"{user}.kubeconfig", api_url, user)
        state: dict[str, Any] = {
            "name": self.name,
            "api_url": api_url,
            "node": node,
            "processes": {},
            "ports": {
                "etcd-client": etcd_client,
                "etcd-peer": etcd_peer,
                "kube-apiserver": api_port,
                "kwok": kwok_port,
            },
        }
        self._write_state(state)
        p, k8s = self._pki, tools["kubernetes"]
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_client}", f"http://127.0.0.1:{etcd_peer}"
        cm, sched = kubeconfigs / "controller-manager.kubeconfig", kubeconfigs / "scheduler.kubeconfig"
        commands = {
            "etcd": [
                tools["etcd"]["etcd"],
                "--name=node0",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=node0={peer_url}",
                "--auto-compaction-retention=1",
                "--quota-backend-bytes=2147483648",
                "--unsafe-no-fsync=true",  # throw-away data; fsync stalls on VM disks slow every write
                "--log-level=warn",
            ],
            "kube-apiserver": [
                k8s["kube-apiserver"],
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction,PodSecurity",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # 127.0.0.1 may not be an Endpoints address, and nothing here dials the `kubernetes`
                # Service; without this the apiserver logs an error every few seconds.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--v=1",
            ],
            "kube-controller-manager": [
                k8s["kube-controller-manager"],
                f"--kubeconfig={cm}",
                f"--authentication-kubeconfig={cm}",
                f"--authorization-kubeconfig={cm}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",  # one instance; saves the lease wait on restart
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*,-nodeipam",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--v=1",
            ],
            "kube-scheduler": [
                k8s["kube-scheduler"],
                f"--kubeconfig={sched}",
                f"--authentication-kubeconfig={sched}",
                f"--authorization-kubeconfig={sched}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--v=1",
            ],
            "kwok": [
                tools["kwok"]["kwok"],
                f"--kubeconfig={kubeconfigs / 'kwok.kubeconfig'}",
                f"--config={STAGES}",
                "--manage-all-nodes=true",
                "--node-ip=127.0.0.1",
                f"--node-port={kwok_port}",
                f"--server-address=127.0.0.1:{kwok_port}",
                f"--tls-cert-file={p / 'kwok.crt'}",
                f"--tls-private-key-file={p / 'kwok.key'}",
                "--node-lease-duration-seconds=40",
                "--v=WARN",
            ],
        }
        api = self._api(state)
        started = time.monotonic()
        progress.say("starting etcd and kube-apiserver")
        for name in ("etcd", "kube-apiserver"):
            self._spawn(name, commands[name], state)
        self._wait("the API server to be ready (/readyz)", "kube-apiserver", state, api.ready)
        progress.say(
            f"API server ready at {api_url} after {time.monotonic() - started:.1f} s; "
            "starting controller-manager, scheduler and kwok"
        )
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._spawn(name, commands[name], state)
        api.ensure("/apis/storage.k8s.io/v1/storageclasses", STORAGE_CLASS)
        api.ensure("/api/v1/nodes", _node(node, k8s.version))
        self._wait(
            f"node {NODE_NAME} to be Ready",
            "kwok",
            state,
            lambda: _condition(api.get(f"/api/v1/nodes/{NODE_NAME}")[1], "Ready"),
        )
        self._wait(
            "the `default` ServiceAccount",
            "kube-controller-manager",
            state,
            lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        )
        progress.say(
            f"simulated cluster `{self.name}` ready after {time.monotonic() - started:.1f} s "
            f"(node {NODE_NAME}: {node['cpu']} CPU, {node['memory']})"
        )

    def _spawn(self, name: str, argv: list, state: dict) -> None:
        argv = [str(a) for a in argv]
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} mims starts: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                child = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ClusterError(f"simulated cluster `{self.name}`: cannot start {name} ({argv[0]}): {exc}") from exc
        _children[child.pid] = child
        state["processes"][name] = {"pid": child.pid, "binary": argv[0]}
        self._write_state(state)

    def _wait(self, what: str, component: str, state: dict, check: Callable[[], bool]) -> None:
        """Polls `check` until it holds; fails at once, with the log's last lines, when a started
        process exits, and names `component`'s log when time runs out."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            for name, entry in state["processes"].items():
                if not _is_running(entry["pid"], entry["binary"]):
                    raise self._failure(f"{name} exited while waiting for {what}", name)
            try:
                if check():
                    return
            except (OSError, ValueError, KeyError, TypeError):
                pass  # not answering yet, or answering with something unexpected: retry
            if time.monotonic() > deadline:
                raise self._failure(f"timed out after {READY_TIMEOUT:.0f} s waiting for {what}", component)
            time.sleep(0.2)

    def _failure(self, what: str, component: str) -> ClusterError:
        log = self.logs / f"{component}.log"
        try:
            lines = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            lines = []
        tail = "".join(f"\n  {line}" for line in lines)
        return ClusterError(
            f"simulated cluster `{self.name}`: {what}; {component} log {log}"
            + (f" ends with:{tail}" if tail else " is empty")
        )

    # ----------------------------------------------------------------------------------------------
    # Files

    def _write_kubeconfig(self, path: Path, server: str, user: str) -> None:
        """Certificates inline, so the admin kubeconfig still works when copied elsewhere."""

        def data(file: str) -> str:
            return base64.b64encode((self._pki / file).read_bytes()).decode()

        context = f"mims-{self.name}"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [
                {"name": context, "cluster": {"server": server, "certificate-authority-data": data("ca.crt")}}
            ],
            "users": [
                {
                    "name": f"{context}-{user}",
                    "user": {"client-certificate-data": data(f"{user}.crt"), "client-key-data": data(f"{user}.key")},
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-{user}"}}],
        }
        pki.write_private(path, yaml.safe_dump(doc, sort_keys=False).encode())

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        partial = self._state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(partial, self._state_file)

    def _alive(self, state: dict) -> dict[str, dict]:
        return {
            name: entry
            for name, entry in state.get("processes", {}).items()
            if _is_running(entry["pid"], entry["binary"])
        }

    def _api(self, state: dict) -> _Api:
        return _Api(state.get("api_url", ""), self._pki)

    @contextmanager
    def _locked(self, progress: Progress) -> Iterator[None]:
        """One `mims` at a time creates, stops or deletes a given cluster. The lock file lives beside
        the cluster's folder, so deleting the folder does not pull it from under a waiting process."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{self.name}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress.say(f"waiting for another mims process working on cluster `{self.name}`")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class _Api:
    """The few API calls starting a cluster needs, with the admin certificate; the official client
    would add half a second of import to every `mims cluster` command."""

    def __init__(self, url: str, pki_dir: Path) -> None:
        self.url = url
        self.pki_dir = pki_dir
        self._context: ssl.SSLContext | None = None

    def ready(self) -> bool:
        return bool(self.url) and self.get("/readyz", timeout=3)[0] == 200

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        return self._call("GET", path, None, timeout)

    def ensure(self, collection: str, obj: dict) -> None:
        """Creates `obj` unless it exists (a restarted cluster keeps its objects)."""
        code, body = self._call("POST", collection, obj, 10)
        if code not in (201, 409):
            message = body.get("message") if isinstance(body, dict) else body
            raise ClusterError(f"creating {obj['kind']} {obj['metadata']['name']} failed (HTTP {code}): {message}")

    def _call(self, method: str, path: str, obj: dict | None, timeout: float) -> tuple[int, Any]:
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
            self._context.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        data = None if obj is None else json.dumps(obj).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (OSError, http.client.HTTPException):
            return 0, None  # not listening yet, or closed the connection while starting


def _decode(raw: bytes) -> Any:
    return json.loads(raw) if raw[:1] == b"{" else raw.decode(errors="replace")


def _condition(obj: Any, kind: str) -> bool:
    conditions = obj.get("status", {}).get("conditions", []) if isinstance(obj, dict) else []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


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


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay open until every port is picked."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _is_running(pid: int, binary: str) -> bool:
    """True when `pid` is alive and still runs `binary` (after a reboot the id may be another's)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            cmdline = (proc / "cmdline").read_bytes()  # empty for a zombie
        except OSError:
            return False
        return cmdline.split(b"\0")[0] == binary.encode()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _terminate(processes: dict[str, dict]) -> None:
    """SIGTERM in reverse start order, each waited for; SIGKILL after STOP_TIMEOUT."""
    for name in reversed(COMPONENTS):
        entry = processes.get(name)
        if not entry:
            continue
        pid, binary = entry["pid"], entry["binary"]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + STOP_TIMEOUT
            while _is_running(pid, binary) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _is_running(pid, binary):
                break
        _children.pop(pid, None)
