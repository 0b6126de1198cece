"""Where a tool comes from when it is not in the toolchain dir yet, tried in this order:

    present   its binaries already on this machine at the right version: in MIMS_TOOLCHAIN_SEARCH_PATH,
              on PATH, and for a provider plugin in Pulumi's plugin dirs; used through symlinks (present.py)
    download  the project's official release (tools.yaml `download:`), checked against its published
              sha256 (or one pinned in tools.yaml when the project publishes none) (download.py)
    build     `go` from the Go module proxy (gobuild.py)

`install()` tries them in that order, restricted by `--source` / MIMS_TOOLCHAIN_SOURCES; MIMS_OFFLINE=1
rules out every download (no release download, no module zip; go runs with GOPROXY=off). A source that
cannot provide a tool raises `Unavailable` with a one-line reason, and install() tries the next one.
Whatever the source, a binary counts only when its version check passes (checks.py).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable

from mims.errors import UsageError
from mims.toolchain.recipes import Tool

SOURCES = ("present", "download", "build")
VERBS = {"present": "linked", "download": "downloaded", "build": "built"}  # a tool installed from each
SOURCES_ENV = "MIMS_TOOLCHAIN_SOURCES"
SEARCH_PATH_ENV = "MIMS_TOOLCHAIN_SEARCH_PATH"
OFFLINE_ENV = "MIMS_OFFLINE"

# say(message): what a source is doing for the tool it works on, for the progress of install().
Say = Callable[[str], None]


class Unavailable(Exception):
    """This source cannot provide the tool; the message says why, in one line. `verdict` is how
    install() reports it: "unavailable" (nothing usable there) or "rejected" (found, but wrong)."""

    def __init__(self, reason: str, verdict: str = "unavailable") -> None:
        super().__init__(reason)
        self.verdict = verdict


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def resolve_sources(requested: Iterable[str] | None = None) -> tuple[str, ...]:
    """The sources to try, in the fixed order of SOURCES: `requested` (`--source`, repeatable or comma
    lists) when given, else MIMS_TOOLCHAIN_SOURCES, else all; MIMS_OFFLINE drops `download`."""
    items = [i for i in requested or [] if i]
    origin = "--source"
    if not items:
        origin, items = SOURCES_ENV, [os.environ.get(SOURCES_ENV) or ",".join(SOURCES)]
    names = [n.strip().lower() for item in items for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise UsageError(
            f"{origin}: unknown source {', '.join(unknown) or '(none given)'}; choose from {', '.join(SOURCES)}"
        )
    chosen = tuple(s for s in SOURCES if s in names)
    if offline():
        chosen = tuple(s for s in chosen if s != "download")
        if not chosen:
            raise UsageError(f"{OFFLINE_ENV}=1 rules out downloads, the only source {origin} allows")
    return chosen


def skip_reason(tool: Tool, source: str) -> str:
    """Why `source` does not apply to `tool` at all (tools.yaml gives it no way), or ''."""
    if source == "present":
        unverifiable = [b for b in tool.binaries if not tool.verifiable(b)]
        if unverifiable:
            return (
                f"tools.yaml gives no version check for {', '.join(unverifiable)}, so a copy found on "
                f"this machine cannot be verified"
            )
    if source == "download":
        if tool.download is None:
            return f"tools.yaml names no official download for {tool.name}"
        if host_platform() not in tool.download.platforms:
            return f"no official release for {host_platform()} (only {', '.join(tool.download.platforms)})"
    return ""


def host_platform() -> str:
    """`os/arch` in Go's names: linux/amd64, darwin/arm64, ..."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}/{arch}"
