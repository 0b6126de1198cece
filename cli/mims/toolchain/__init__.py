"""The binaries mims runs but does not ship: the Pulumi CLI, the pulumi-kubernetes provider plugin and
the simulated cluster's etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Each is installed once into the per-user cache, as `tools.yaml` says, from the first source that has it
(sources.py): the same version already on this machine, the official release download, or a build from
the Go module proxy (build.py). `install()` returns where the binaries are, `status()` what is there.
The provider is also installed as a Pulumi plugin under `pulumi_home()`."""

from __future__ import annotations

from mims.toolchain.build import (
    InstalledTool,
    Tool,
    ToolStatus,
    install,
    load_tools,
    pulumi_home,
    status,
    toolchain_dir,
)
from mims.toolchain.sources import SOURCES, resolve_sources

__all__ = [
    "SOURCES",
    "InstalledTool",
    "Tool",
    "ToolStatus",
    "install",
    "load_tools",
    "pulumi_home",
    "resolve_sources",
    "status",
    "toolchain_dir",
]
