"""The clusters mims deploys to: simulated ones it runs itself (`sim`), kind clusters, and contexts
of existing kubeconfigs; `resolve()` picks one for a blueprint and the command line."""

from __future__ import annotations

from mims.cluster.connection import ClusterConnection, default_kubeconfigs, existing_context, resolve
from mims.cluster.kind import KindCluster, KindStatus
from mims.cluster.local import LocalStatus
from mims.cluster.processes import ProcessStatus
from mims.cluster.sim import SimCluster

__all__ = [
    "ClusterConnection",
    "KindCluster",
    "KindStatus",
    "LocalStatus",
    "ProcessStatus",
    "SimCluster",
    "default_kubeconfigs",
    "existing_context",
    "resolve",
]
