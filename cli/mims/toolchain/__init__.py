"""The binaries mims runs but does not ship: the Pulumi CLI, the pulumi-kubernetes provider plugin and
the simulated cluster's etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Each is built once from the Go module proxy (the only download site these machines reach) into the
per-user cache, as `tools.yaml` says; `install()` returns where the binaries are, `status()` what is
there. The provider is also installed as a Pulumi plugin under `pulumi_home()`."""

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

__all__ = [
    "InstalledTool",
    "Tool",
    "ToolStatus",
    "install",
    "load_tools",
    "pulumi_home",
    "status",
    "toolchain_dir",
]
