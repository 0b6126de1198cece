"""The `present` source: the tool's binaries already on this machine, at its version (checked), used
through symlinks. Looked for in MIMS_TOOLCHAIN_SEARCH_PATH, for a provider plugin in Pulumi's plugin
dirs, then on PATH."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mims.toolchain.checks import check_env, verify_binary
from mims.toolchain.recipes import Tool
from mims.toolchain.sources import SEARCH_PATH_ENV, Unavailable, skip_reason


def places(tool: Tool) -> str:
    """Where `find_present` looks, for messages: "on PATH", "in Pulumi's plugin dirs or on PATH", ..."""
    where = [f"in {SEARCH_PATH_ENV}"] if os.environ.get(SEARCH_PATH_ENV) else []
    if tool.plugin is not None:
        where.append("in Pulumi's plugin dirs")
    return " or ".join([", ".join(where), "on PATH"] if where else ["on PATH"])


def candidates(tool: Tool, binary: str, root: Path) -> list[Path]:
    """Executables named `binary` in MIMS_TOOLCHAIN_SEARCH_PATH, Pulumi's plugin dirs (for a plugin)
    and PATH, in that order; each file once, and none from the toolchain dir itself."""
    paths = [Path(d) / binary for d in os.environ.get(SEARCH_PATH_ENV, "").split(os.pathsep) if d]
    if tool.plugin is not None and tool.plugin.binary == binary:
        name = f"{tool.plugin.kind}-{tool.plugin.name}-v{tool.version}"
        for home in _pulumi_homes():
            if not (home / "plugins" / f"{name}.partial").exists():  # Pulumi is still installing it
                paths.append(home / "plugins" / name / binary)
    paths += [Path(d) / binary for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    root = root.resolve()
    seen: set[Path] = set()
    result = []
    for path in paths:
        if not path.is_file() or not os.access(path, os.X_OK):
            continue
        real = path.resolve()
        if real in seen or real.is_relative_to(root):
            continue
        seen.add(real)
        result.append(path)
    return result


def _pulumi_homes() -> list[Path]:
    homes = [Path(os.environ["PULUMI_HOME"])] if os.environ.get("PULUMI_HOME") else []
    homes.append(Path.home() / ".pulumi")
    return list(dict.fromkeys(homes))


def find_present(tool: Tool, root: Path) -> dict[str, Path]:
    """Every binary of the tool, found at its version (checked), or Unavailable naming what is not."""
    skip = skip_reason(tool, "present")
    if skip:
        raise Unavailable(skip)
    found = {}
    with tempfile.TemporaryDirectory(prefix="mims-check-") as scratch:
        env = check_env(scratch)
        for binary in tool.binaries:
            wrong = []
            for path in candidates(tool, binary, root):
                failure = verify_binary(tool, binary, path, env)
                if not failure:
                    found[binary] = path
                    break
                wrong.append(f"{path}: {failure}")
            else:
                raise Unavailable("; ".join([f"no {binary} {tool.version} {places(tool)}", *wrong]))
    return found
