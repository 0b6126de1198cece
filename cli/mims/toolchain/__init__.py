"""The binaries mims runs but does not ship: the Pulumi CLI, the pulumi-kubernetes provider plugin and
the simulated cluster's etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Each is installed once into the per-user cache, as `tools.yaml` says, from the first source that has it:
the same version already on this machine, the official release download, or a build from the Go module
proxy. `install()` returns where the binaries are, `status()` what is there. The provider is also
installed as a Pulumi plugin under `pulumi_home()`.

The modules, each importing only those listed before it:

    recipes    tools.yaml as a model, `load_tools()`
    sources    which sources, in which order (`--source`, MIMS_TOOLCHAIN_SOURCES, MIMS_OFFLINE)
    layout     the toolchain dir: paths, tool.json, `status()`, putting a tool in place
    checks     whether a binary is the tool at its version
    present    source `present`: binaries already on this machine
    download   source `download`: the official release
    modulezip  data files of a tool that is not built, from its Go module zip
    gobuild    source `build`: `go` from the Go module proxy
    installer  `install()`: the sources in turn, locks, plugin placement
"""

from __future__ import annotations

from mims.toolchain.installer import InstalledTool, install
from mims.toolchain.layout import ToolStatus, pulumi_home, status, toolchain_dir
from mims.toolchain.recipes import Tool, load_tools
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
