"""Which cluster a command talks to, and how to reach it: a simulated cluster, a kind cluster or a
context of an existing kubeconfig. Everything downstream (Pulumi, readiness checks) only needs
the `ClusterConnection` this module returns."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from mims.cluster.kind import KindCluster
from mims.cluster.node import NodeCluster
from mims.cluster.sim import SimCluster
from mims.errors import ClusterError
from mims.progress import SILENT, Progress

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from mims.blueprint.model import Cluster


@dataclass(frozen=True)
class ClusterConnection:
    """`context` None means the kubeconfig's current-context."""

    kind: Literal["sim", "node", "kind", "context"]
    name: str
    kubeconfig: Path
    context: str | None = None

    def kubeconfig_text(self) -> str:
        try:
            return self.kubeconfig.read_text()
        except OSError as exc:
            raise ClusterError(f"cannot read kubeconfig {self.kubeconfig}: {exc.strerror}") from exc

    def api_client(self) -> ApiClient:
        """An official-client ApiClient for this cluster (imported here: it is slow to import)."""
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        try:
            return config.new_client_from_config(
                config_file=str(self.kubeconfig), context=self.context, persist_config=False
            )
        except (ConfigException, OSError) as exc:
            raise ClusterError(
                f"cannot use kubeconfig {self.kubeconfig}{f' context {self.context}' if self.context else ''}: {exc}"
            ) from exc


def resolve(
    cluster: Cluster | None,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    sim_name: str = "mims",
    create_sim: bool = False,
    sim_node: tuple[str, str] | None = None,
    progress: Progress = SILENT,
) -> ClusterConnection:
    """`--kubeconfig`/`--context` win over the blueprint's `cluster` section; without either, the
    blueprint's target decides (a simulated cluster when there is no section). `create_sim` starts
    the simulated or kind cluster when it is not running, else its absence is an error; a new
    simulated cluster's node gets `sim_node` (cpu, memory)."""
    if kubeconfig is not None or context is not None:
        return existing_context(context, kubeconfig)
    target = cluster.target if cluster is not None else "sim"
    if target == "context":
        assert cluster is not None and cluster.context  # the model requires it for this target
        return existing_context(cluster.context)
    if target == "kind":
        kind = KindCluster(sim_name)
        if create_sim:
            kind.create(progress)
        elif kind.exists():
            kind.write_kubeconfig()
        else:
            raise ClusterError(f"no kind cluster `{sim_name}`; run `mims cluster create --kind`")
        return ClusterConnection("kind", sim_name, kind.kubeconfig, kind.context)
    local: SimCluster | NodeCluster = NodeCluster(sim_name) if target == "node" else SimCluster(sim_name)
    if create_sim and isinstance(local, NodeCluster):
        local.create(progress=progress)
    elif create_sim and isinstance(local, SimCluster):
        cpu, memory = sim_node or (None, None)
        local.create(cpu=cpu, memory=memory, progress=progress)
    else:
        state = local.status().state
        if state == "missing":
            raise ClusterError(f"no {local.label}; run `mims cluster create {local.CREATE_FLAG}`")
        if state != "running":
            raise ClusterError(
                f"{local.label} is {state}; run `mims cluster create {local.CREATE_FLAG}` to start it again"
            )
    return ClusterConnection(target, sim_name, local.kubeconfig)


def existing_context(context: str | None, kubeconfig: Path | None = None) -> ClusterConnection:
    """A context of `kubeconfig`, else of the files in KUBECONFIG, else of ~/.kube/config; the
    kubeconfig's current-context when `context` is None. With several files, a context is taken from
    the first file defining it (kubectl's merge rule), and that file must also hold its cluster and user."""
    files = [kubeconfig] if kubeconfig is not None else default_kubeconfigs()
    found = [f for f in files if f.is_file()]
    if not found:
        raise ClusterError(f"no kubeconfig at {', '.join(map(str, files))}")
    contexts: dict[str, Path] = {}
    current = None
    for file in found:
        try:
            doc = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ClusterError(f"cannot read kubeconfig {file}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ClusterError(f"kubeconfig {file} is not a mapping")
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name"):
                contexts.setdefault(str(entry["name"]), file)
        current = current or doc.get("current-context") or None
    where = ", ".join(map(str, found))
    available = f"available: {', '.join(sorted(contexts))}" if contexts else "it defines no contexts"
    name = context or current
    if not name:
        raise ClusterError(f"kubeconfig {where} has no current-context; pass --context ({available})")
    if name not in contexts:
        raise ClusterError(f"context `{name}` is not in kubeconfig {where}; {available}")
    return ClusterConnection("context", name, contexts[name], name)


def default_kubeconfigs() -> list[Path]:
    """The files kubectl reads: KUBECONFIG's list, else ~/.kube/config."""
    listed = [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path.home() / ".kube" / "config"]
