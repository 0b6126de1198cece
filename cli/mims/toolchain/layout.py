"""The toolchain directory (default `~/.cache/mims/toolchain`, or `$MIMS_CACHE_DIR/toolchain`): where each
tool lives, the tool.json that says what is installed there, whether that is current, and how a tool
is put in place.

    <name>-<version>/bin/<binary>      the binaries (symlinks to them when found on this machine)
    <name>-<version>/share/...         data files copied from the module (kwok's stages)
    <name>-<version>/tool.json         where it came from (source), which recipe (digest), how long it took
    pulumi-home/plugins/<kind>-<name>-v<version>/<binary>   provider plugins (PULUMI_HOME)
    .locks/<name>.lock                 one flock per tool: concurrent installs build it once
    .work/                             a tool being put together (removed afterwards)
    .logs/<name>-<version>.log         full output of the last build of a tool

A tool counts as installed when its directory holds a tool.json whose recipe digest matches the
current `tools.yaml` entry and every binary is there (for linked binaries: unchanged since); anything
else is installed again. Whatever the source, a tool is put together in `.work/` and appears by one
rename, so a reader never sees half a tool.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mims import paths
from mims.toolchain.recipes import Tool, load_tools

MANIFEST = "tool.json"
PLUGIN_MARKER = ".mims-sha256"  # beside a placed plugin binary: the sha256 from the tool's manifest


@dataclass(frozen=True)
class ToolStatus:
    name: str
    version: str
    dir: Path
    state: str  # "present", "missing" or "stale" (another recipe, incomplete, or its plugin not placed)
    binaries: dict[str, Path]
    build_seconds: float | None = None
    plugin_dir: Path | None = None
    source: str = ""  # of an installed tool: "present", "download" or "build"
    origin: str = ""  # where from: the binaries' paths, the download URLs, or module@version


def toolchain_dir(cache_dir: Path | None = None) -> Path:
    """`cache_dir` itself when given, else `<mims cache>/toolchain` (MIMS_CACHE_DIR honoured)."""
    return Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "toolchain"


def pulumi_home(cache_dir: Path | None = None) -> Path:
    """The PULUMI_HOME whose plugins/ holds the provider plugins built here."""
    return toolchain_dir(cache_dir) / "pulumi-home"


def plugin_dir(tool: Tool, cache_dir: Path | None = None) -> Path | None:
    if tool.plugin is None:
        return None
    return pulumi_home(cache_dir) / "plugins" / f"{tool.plugin.kind}-{tool.plugin.name}-v{tool.version}"


def status(cache_dir: Path | None = None, tools_file: Path | None = None) -> list[ToolStatus]:
    """What is in the toolchain directory, tool by tool (nothing is installed or locked)."""
    root = toolchain_dir(cache_dir)
    _, tools = load_tools(tools_file)
    result = []
    for tool in tools.values():
        target = root / tool.dir_name
        manifest = read_manifest(target)
        binaries = {b: target / "bin" / b for b in tool.binaries}
        if manifest is None and not target.exists():
            state = "missing"
        elif is_current(tool, target, manifest):
            state = "present"
            pdir = plugin_dir(tool, root)
            if pdir is not None and not plugin_current(tool, target, pdir):
                state = "stale"
        else:
            state = "stale"
        result.append(
            ToolStatus(
                name=tool.name,
                version=tool.version,
                dir=target,
                state=state,
                binaries=binaries,
                build_seconds=(manifest or {}).get("build_seconds"),
                plugin_dir=plugin_dir(tool, root),
                source=source_of(manifest) if manifest else "",
                origin=origin_of(manifest) if manifest else "",
            )
        )
    return result


# --------------------------------------------------------------------------------------------------
# tool.json


def read_manifest(target: Path) -> dict | None:
    try:
        data = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def new_manifest(tool: Tool, out: Path, source: str, **extra: Any) -> dict[str, Any]:
    """The tool.json of the tool put together in `out`, installed from `source`."""
    binaries = {}
    for binary in tool.binaries:
        path = out / "bin" / binary
        info = path.stat()
        binaries[binary] = {"sha256": _sha256(path), "bytes": info.st_size}
        if source == "present":  # a linked binary replaced later makes the tool stale
            binaries[binary]["mtime_ns"] = info.st_mtime_ns
    return {
        "name": tool.name,
        "version": tool.version,
        "source": source,
        "module": f"{tool.module}@{tool.module_version}",
        "recipe": tool.recipe,
        "digest": tool.digest(),
        **extra,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "binaries": binaries,
    }


def source_of(manifest: Mapping[str, Any] | None) -> str:
    return str((manifest or {}).get("source") or "build")  # tool.json files from before sources: built


def origin_of(manifest: Mapping[str, Any]) -> str:
    source = source_of(manifest)
    if source == "present":
        return ", ".join((manifest.get("found") or {}).values())
    if source == "download":
        return ", ".join(dict.fromkeys((manifest.get("urls") or {}).values()))
    return str(manifest.get("module") or "")


def is_current(tool: Tool, target: Path, manifest: dict | None) -> bool:
    if manifest is None or manifest.get("digest") != tool.digest():
        return False
    if not all(os.access(target / "bin" / b, os.X_OK) for b in tool.binaries):
        return False
    if source_of(manifest) == "present":  # linked: the file linked to must not have changed since
        for binary in tool.binaries:
            info = (target / "bin" / binary).stat()
            recorded = (manifest.get("binaries") or {}).get(binary) or {}
            if (info.st_size, info.st_mtime_ns) != (recorded.get("bytes"), recorded.get("mtime_ns")):
                return False
    return True


def plugin_current(tool: Tool, target: Path, pdir: Path) -> bool:
    """The plugin dir holds the binary this tool's manifest describes (checked by the marker written
    when it was placed, and its size: hashing 150 MB on every `install()` would be slow)."""
    assert tool.plugin is not None
    installed = pdir / tool.plugin.binary
    if not os.access(installed, os.X_OK) or Path(f"{pdir}.partial").exists():
        return False
    built = ((read_manifest(target) or {}).get("binaries") or {}).get(tool.plugin.binary) or {}
    try:
        marker = (pdir / PLUGIN_MARKER).read_text().strip()
    except OSError:
        return False
    return marker == built.get("sha256") and installed.stat().st_size == built.get("bytes")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Putting a tool in place


@contextmanager
def staging(tool: Tool, root: Path) -> Iterator[tuple[Path, Path]]:
    """A private work dir and the `out` dir a tool is put together in; removed afterwards."""
    work_root = root / ".work"
    work_root.mkdir(parents=True, exist_ok=True)
    work = work_root / f"{tool.dir_name}.{os.getpid()}"
    rmtree(work)
    out = work / "out"
    (out / "bin").mkdir(parents=True)
    try:
        yield work, out
    finally:
        rmtree(work)


def put_in_place(tool: Tool, root: Path, out: Path, work: Path, manifest: Mapping[str, Any]) -> None:
    """Writes tool.json into `out` and moves it into place by rename; a stale tool dir there is moved
    aside into `work` first."""
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    target = root / tool.dir_name
    if target.exists():
        os.rename(target, work / "old")
    os.rename(out, target)


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        # A module copy interrupted mid-way keeps the module cache's read-only directories.
        for dirpath, _dirnames, _filenames in os.walk(path):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(path)
