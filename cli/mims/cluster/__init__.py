"""The clusters mims deploys to: simulated ones it runs itself (`sim`), kind clusters, and contexts
of existing kubeconfigs; `resolve()` picks one for a blueprint and the command line."""

from __future__ import annotations

from mims.cluster.connection import ClusterConnection, default_kubeconfigs, existing_context, resolve
from mims.cluster.kind import KindCluster, KindStatus
from mims.cluster.local import LocalCluster, LocalStatus, stored_type
from mims.cluster.node import NodeCluster
from mims.cluster.processes import ProcessStatus
from mims.cluster.sim import SimCluster


def local_cluster(name: str) -> LocalCluster:
    """The simulated or real-node cluster of that name, by the type it was created with (simulated
    when there is none, so that messages about a missing cluster suggest the default)."""
    return NodeCluster(name) if stored_type(name) == "node" else SimCluster(name)


__all__ = [
    "ClusterConnection",
    "KindCluster",
    "KindStatus",
    "LocalCluster",
    "LocalStatus",
    "NodeCluster",
    "ProcessStatus",
    "SimCluster",
    "default_kubeconfigs",
    "existing_context",
    "local_cluster",
    "resolve",
]
