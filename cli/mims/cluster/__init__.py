"""The clusters mims deploys to: simulated ones it runs itself (`sim`), kind clusters, and contexts
of existing kubeconfigs; `resolve()` picks one for a blueprint and the command line."""

from __future__ import annotations

from mims.cluster.connection import ClusterConnection, default_kubeconfigs, existing_context, resolve
from mims.cluster.kind import KindCluster, KindStatus
from mims.cluster.sim import ProcessStatus, SimCluster, SimStatus

__all__ = [
    "ClusterConnection",
    "KindCluster",
    "KindStatus",
    "ProcessStatus",
    "SimCluster",
    "SimStatus",
    "default_kubeconfigs",
    "existing_context",
    "resolve",
]
