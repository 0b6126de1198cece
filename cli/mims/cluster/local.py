"""What the two clusters mims runs on this machine share: a folder, processes it supervises, a lock, a
state file, and the lifecycle `create` (or start again), `stop`, `delete`, `status`.

State lives in `<clusters_dir>/<name>/`: pki/, kubeconfig (admin), kubeconfigs/ (components), etcd/
(data), logs/<component>.log and state.json (type, ports, process ids, node). One name, one cluster:
a simulated and a real-node cluster cannot share a name."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from mims import paths
from mims.cluster import pki
from mims.cluster.controlplane import Api, ensure_encryption_config, write_kubeconfig
from mims.cluster.processes import ProcessStatus, Supervisor, alive, terminate
from mims.errors import ClusterError, UsageError
from mims.filelock import exclusive
from mims.progress import SILENT, Progress
from mims.toolchain import InstalledTool, install

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")

State = Literal["missing", "stopped", "running", "degraded"]


@dataclass(frozen=True)
class LocalStatus:
    """`state`: missing (never created or deleted), stopped (no process runs), running (all do),
    degraded (some do; `create` restarts them). `type`: sim or node."""

    type: str
    name: str
    directory: Path
    state: State
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


class LocalCluster:
    """A subclass names its processes (COMPONENTS, in start order), the tools they come from, and how
    it starts them (`_start`); it may clean up after its processes stop (`_after_stop`) and before
    its folder goes (`_before_delete`)."""

    TYPE: ClassVar[str]
    LABEL: ClassVar[str]  # "simulated cluster"
    CREATE_FLAG: ClassVar[str]  # "--sim"
    COMPONENTS: ClassVar[tuple[str, ...]]
    TOOLS: ClassVar[tuple[str, ...]]

    def __init__(self, name: str = "mims", root: Path | None = None) -> None:
        if not _NAME.match(name):
            raise UsageError(f"cluster name {name!r}: use 1-40 lowercase letters, digits and dashes")
        self.name = name
        self.root = root or paths.clusters_dir()
        self.dir = self.root / name
        self.kubeconfig = self.dir / "kubeconfig"
        self.kubeconfigs = self.dir / "kubeconfigs"
        self.logs = self.dir / "logs"
        self._state_file = self.dir / "state.json"
        self._pki = self.dir / "pki"
        self.supervisor = Supervisor(self.label, self.dir, self.logs, self._write_state)

    @property
    def label(self) -> str:
        return f"{self.LABEL} `{self.name}`"

    def exists(self) -> bool:
        """Whether the cluster's folder is there (stopped or running): something to delete."""
        return self.dir.exists()

    def alive(self) -> bool:
        """Whether any of its processes runs (from the state file: no API call)."""
        return bool(alive(self._read_state()))

    # ----------------------------------------------------------------------------------------------
    # Lifecycle

    def _create(self, settings: dict[str, Any], progress: Progress) -> LocalStatus:
        """Starts the cluster and returns when a pod could be created. A running cluster is returned
        as it is; a stopped one is restarted on its data with the settings it was created with."""
        with self._locked(progress):
            state = self._read_state()
            self._check_type(state)
            settings = self._settings(state, settings, progress)
            running = alive(state)
            if len(running) == len(self.COMPONENTS) and self.api(state).ready():
                progress.say(f"{self.label} is already running")
                return self.status()
            if running:
                progress.say(f"stopping the {len(running)} of {len(self.COMPONENTS)} processes still running")
                terminate(running, self.COMPONENTS)
            self._prepare(settings, progress)
            tools = install(self.TOOLS, progress=progress)
            if not self._pki.is_dir():
                progress.say("generating certificates")
                self.dir.mkdir(parents=True, exist_ok=True)
                self._generate_pki(settings)
            ensure_encryption_config(self._pki)
            self.kubeconfigs.mkdir(exist_ok=True)
            self.logs.mkdir(exist_ok=True)
            try:
                self._start(tools, settings, progress)
                self._encrypt_old_secrets(bool(state.get("secrets_encrypted")) or not state, progress)
            except BaseException:
                terminate(alive(self._read_state()), self.COMPONENTS)
                self._after_stop(self._read_state())
                raise
        return self.status()

    def _encrypt_old_secrets(self, done: bool, progress: Progress) -> None:
        """A cluster made before mims encrypted Secrets at rest holds them in clear in etcd: each is
        written again once, which stores it encrypted (older etcd revisions keep the clear copy until
        compaction)."""
        state = self._read_state()
        if not done:
            count = self.api(state).rewrite_secrets()
            if count:
                progress.say(f"encrypted the {count} Secrets stored before encryption at rest")
        state["secrets_encrypted"] = True
        self._write_state(state)

    def stop(self) -> bool:
        """Stops the processes and keeps the data; True when anything was running."""
        with self._locked(SILENT):
            state = self._read_state()
            self._check_type(state)
            running = alive(state)
            terminate(running, self.COMPONENTS)
            self._after_stop(state)
            return bool(running)

    def delete(self) -> bool:
        """Stops the processes and removes the cluster's folder; True when there was a cluster."""
        with self._locked(SILENT):
            state = self._read_state()
            self._check_type(state)
            terminate(alive(state), self.COMPONENTS)
            self._after_stop(state)
            self._before_delete(state)
            existed = self.dir.exists()
            shutil.rmtree(self.dir, ignore_errors=True)
            return existed

    def status(self) -> LocalStatus:
        state = self._read_state()
        processes = self.supervisor.statuses(state, self.COMPONENTS)
        up = sum(p.running for p in processes)
        kind: State
        if not self.dir.exists():
            kind = "missing"
        elif up == len(self.COMPONENTS):
            kind = "running"
        else:
            kind = "degraded" if up else "stopped"
        nodes = None
        if any(p.running for p in processes if p.name == "kube-apiserver"):
            code, body = self.api(state).get("/api/v1/nodes", timeout=3)
            nodes = len(body.get("items", [])) if code == 200 and isinstance(body, dict) else None
        rss = [p.rss_mib for p in processes if p.rss_mib is not None]
        node = state.get("node") or {}
        return LocalStatus(
            type=self.TYPE,
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

    def node_size(self) -> tuple[str, str] | None:
        """(cpu, memory) of the node, from the state file: no process or API call, for checks on
        every deploy."""
        node = self._read_state().get("node")
        return (node["cpu"], node["memory"]) if node else None

    # ----------------------------------------------------------------------------------------------
    # What a subclass provides

    def _settings(self, state: dict, asked: dict[str, Any], progress: Progress) -> dict[str, Any]:
        return asked

    def _prepare(self, settings: dict[str, Any], progress: Progress) -> None:
        """Checks (and changes) the machine before any process starts."""

    def _generate_pki(self, settings: dict[str, Any]) -> None:
        pki.generate(self._pki)

    def _start(self, tools: dict[str, InstalledTool], settings: dict[str, Any], progress: Progress) -> None:
        raise NotImplementedError

    def _after_stop(self, state: dict) -> None:
        """Runs after every process of COMPONENTS stopped (also after a failed start)."""

    def _before_delete(self, state: dict) -> None:
        """Runs before the folder is removed."""

    # ----------------------------------------------------------------------------------------------
    # Shared by subclasses

    def new_state(self, api_url: str, **extra: Any) -> dict[str, Any]:
        state = {"type": self.TYPE, "name": self.name, "api_url": api_url, "processes": {}, **extra}
        self._write_state(state)
        return state

    def write_kubeconfig(self, path: Path, server: str, user: str) -> None:
        write_kubeconfig(path, self._pki, f"mims-{self.name}", server, user)

    def api(self, state: dict | None = None) -> Api:
        """API calls with the admin certificate, to the address in `state` (else the state file's)."""
        state = self._read_state() if state is None else state
        return Api(state.get("api_url", ""), self._pki)

    def _check_type(self, state: dict) -> None:
        found = state.get("type", "sim") if state else None
        if found is not None and found != self.TYPE:
            other = {"sim": "a simulated cluster", "node": "a real-node cluster"}.get(found, found)
            raise ClusterError(
                f"cluster `{self.name}` is {other}, not a {self.LABEL}; use `mims cluster ... --name` "
                f"with another name, or delete it first (mims cluster delete --name {self.name})"
            )

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        partial = self._state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(partial, self._state_file)

    def _locked(self, progress: Progress) -> AbstractContextManager[None]:
        """One `mims` at a time creates, stops or deletes a given cluster. The lock file lives beside
        the cluster's folder, so deleting the folder does not pull it from under a waiting process."""
        return exclusive(
            self.root / ".locks" / f"{self.name}.lock",
            progress,
            f"waiting for another mims process working on cluster `{self.name}`",
        )


def stored_type(name: str, root: Path | None = None) -> str | None:
    """`sim` or `node` for an existing cluster of that name (clusters from before the node type are
    simulated), None when there is none."""
    state_file = (root or paths.clusters_dir()) / name / "state.json"
    if not state_file.parent.exists():
        return None
    try:
        return str(json.loads(state_file.read_text()).get("type", "sim"))
    except (OSError, ValueError):
        return "sim"


def elapsed(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"
