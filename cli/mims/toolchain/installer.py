"""`install()`: each tool of tools.yaml that is not current in the toolchain dir is installed from the
first source that has it (sources.py), under a per-tool lock so concurrent installs do it once, and a
provider plugin is placed under `pulumi_home()`. A tool no source can install does not stop the others.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mims.errors import ToolchainError
from mims.filelock import exclusive
from mims.progress import SILENT, Prefixed, Progress
from mims.toolchain.checks import verify
from mims.toolchain.download import Fetcher, download_release
from mims.toolchain.gobuild import Go, build
from mims.toolchain.layout import (
    PLUGIN_MARKER,
    is_current,
    new_manifest,
    origin_of,
    plugin_current,
    plugin_dir,
    put_in_place,
    read_manifest,
    rmtree,
    source_of,
    staging,
    toolchain_dir,
)
from mims.toolchain.modulezip import module_files
from mims.toolchain.present import find_present
from mims.toolchain.recipes import Tool, load_tools
from mims.toolchain.sources import VERBS, Unavailable, offline, resolve_sources, skip_reason


@dataclass(frozen=True)
class InstalledTool:
    name: str
    version: str
    dir: Path
    binaries: dict[str, Path]
    built: bool  # True when this call installed it (from any source), False when it was already there
    source: str = "build"  # "present", "download" or "build": where the installed tool came from
    seconds: float = 0.0  # spent on it by this call (waiting for another process's lock included)

    def __getitem__(self, binary: str) -> Path:
        return self.binaries[binary]


def install(
    names: Iterable[str] | None = None,
    cache_dir: Path | None = None,
    progress: Progress = SILENT,
    tools_file: Path | None = None,
    sources: Iterable[str] | None = None,
) -> dict[str, InstalledTool]:
    """Installs the named tools (all when None) that are not in the toolchain dir at their version and
    recipe, each from the first source that has it (present, download, build; `sources` restricts them
    as `--source` does, else MIMS_TOOLCHAIN_SOURCES; MIMS_OFFLINE=1 rules out downloads), and places
    provider plugins into `pulumi_home()`. Returns every requested tool. A tool no source can install
    does not stop the others; afterwards one ToolchainError names each such tool and why each source
    failed."""
    go_min, tools = load_tools(tools_file)
    wanted = list(tools) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in tools]
    if unknown:
        raise ToolchainError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(tools)}", tool=unknown[0])
    session = _Session(go_min, resolve_sources(sources))
    root = toolchain_dir(cache_dir)
    result = {}
    failures: list[ToolchainError] = []
    for name in wanted:
        tool = tools[name]
        started = time.monotonic()
        steps = Prefixed(progress, tool.name)  # every line names the tool it is about
        target = root / tool.dir_name
        installed = False
        if not is_current(tool, target, read_manifest(target)):
            with _locked(root, tool, steps):
                # Another process may have installed it while we waited for the lock.
                if not is_current(tool, target, read_manifest(target)):
                    try:
                        _install_tool(tool, root, session, steps)
                    except ToolchainError as exc:
                        failures.append(exc)
                        continue
                    installed = True
        else:
            steps.say(_already(tool, read_manifest(target) or {}))
        pdir = plugin_dir(tool, root)
        if pdir is not None and not plugin_current(tool, target, pdir):
            with _locked(root, tool, steps, lock_name="pulumi-home"):
                if not plugin_current(tool, target, pdir):
                    _install_plugin(tool, target, pdir, steps)
        result[name] = InstalledTool(
            name=tool.name,
            version=tool.version,
            dir=target,
            binaries={b: target / "bin" / b for b in tool.binaries},
            built=installed,
            source=source_of(read_manifest(target)),
            seconds=time.monotonic() - started,
        )
    if len(failures) == 1:
        raise failures[0]
    if failures:
        first = failures[0]
        raise ToolchainError(
            "\n".join(str(f) for f in failures), tool=first.tool, command=first.command, output_tail=first.output_tail
        )
    return result


@dataclass
class _Session:
    """What the tools of one install() share: the sources, one `go`, and the hosts found unreachable."""

    go_min: str
    sources: tuple[str, ...]
    fetcher: Fetcher = field(default_factory=Fetcher)
    go: Go | None = None

    def find_go(self, tool: Tool) -> Go:
        if self.go is None:
            self.go = Go.find(self.go_min, tool)
        return self.go

    def network_fetcher(self) -> Fetcher | None:
        """For the module zip a present tool's data files come from when Go's module cache lacks it:
        the Go module proxy is asked unless offline."""
        return None if offline() else self.fetcher


def _install_tool(tool: Tool, root: Path, session: _Session, steps: Progress) -> None:
    """The first source that can provide `tool` installs it; each one tried that cannot gets a progress
    line saying why and what comes next (sources tools.yaml gives the tool no way to use are passed
    over quietly). ToolchainError naming every source's reason when none can."""
    attempts: dict[str, tuple[str, ToolchainError | None]] = {}
    for source in session.sources:
        skip = skip_reason(tool, source)
        if skip:
            attempts[source] = (skip, None)
    tried = [s for s in session.sources if s not in attempts]
    for index, source in enumerate(tried):
        try:
            if source == "present":
                _install_present(tool, root, session, steps)
            elif source == "download":
                _install_download(tool, root, session, steps)
            else:
                build(tool, root, session.find_go(tool), steps.say)
            return
        except Unavailable as exc:
            attempts[source] = (str(exc), None)
            verdict = exc.verdict
        except ToolchainError as exc:
            attempts[source] = (str(exc), exc)
            verdict = "failed"
        except OSError as exc:  # writing the toolchain dir, say
            attempts[source] = (str(exc), None)
            verdict = "failed"
        if index + 1 < len(tried):
            headline = (
                "not found on this machine"
                if (source, verdict) == ("present", "unavailable")
                else f"{source} {verdict}"
            )
            reason = attempts[source][0].splitlines()[0]
            steps.say(f"{headline} ({reason}); {_next_step(tool, tried[index + 1])}")
    raise _failure(tool, [(s, *attempts[s]) for s in session.sources])


def _next_step(tool: Tool, source: str) -> str:
    if source == "download":
        assert tool.download is not None
        return f"downloading from {tool.download.host()}"
    if offline():
        return "building from the Go module cache (MIMS_OFFLINE=1: GOPROXY=off)"
    return "building from the Go module proxy"


def _failure(tool: Tool, attempts: list[tuple[str, str, ToolchainError | None]]) -> ToolchainError:
    lines = [f"cannot install {tool.name} {tool.version}:"]
    for source, reason, _error in attempts:
        first, *rest = reason.splitlines() or [""]
        lines.append(f"  {source}: {first}")
        lines += [f"    {line}" for line in rest]
    last = next((e for _, _, e in reversed(attempts) if e is not None), None)
    return ToolchainError(
        "\n".join(lines),
        tool=tool.name,
        command=last.command if last else None,
        output_tail=last.output_tail if last else "",
    )


def _install_present(tool: Tool, root: Path, session: _Session, steps: Progress) -> None:
    found = find_present(tool, root)
    steps.say("found " + ", ".join(f"{b} {tool.version} at {p}" for b, p in found.items()))
    with staging(tool, root) as (work, out):
        for binary, path in found.items():
            os.symlink(os.path.abspath(path), out / "bin" / binary)
        files_from = module_files(tool, out, work, session.network_fetcher(), steps.say)
        manifest = new_manifest(tool, out, "present", found={b: os.path.abspath(p) for b, p in found.items()})
        if files_from:
            manifest["files_from"] = files_from
        put_in_place(tool, root, out, work, manifest)
    steps.say(f"linked {tool.name} {tool.version} into {root / tool.dir_name}")


def _install_download(tool: Tool, root: Path, session: _Session, steps: Progress) -> None:
    started = time.monotonic()
    with staging(tool, root) as (work, out):
        urls = download_release(tool, out / "bin", work, session.fetcher, steps.say)
        for binary in tool.binaries:
            if tool.verifiable(binary):
                steps.say(f"checking the downloaded {binary}")
        failure = verify(tool, {b: out / "bin" / b for b in tool.binaries})
        if failure:
            raise Unavailable(f"the downloaded {failure}", verdict="rejected")
        files_from = module_files(tool, out, work, session.fetcher, steps.say)
        seconds = round(time.monotonic() - started, 1)
        manifest = new_manifest(tool, out, "download", urls=urls, download_seconds=seconds)
        if files_from:
            manifest["files_from"] = files_from
        put_in_place(tool, root, out, work, manifest)
    steps.say(f"downloaded {tool.name} {tool.version} in {seconds:.0f}s")


def _already(tool: Tool, manifest: Mapping[str, Any]) -> str:
    text = f"{tool.name} {tool.version} is already {VERBS.get(source_of(manifest), 'installed')}"
    return text + (f" ({origin_of(manifest)})" if source_of(manifest) == "present" else "")


def _locked(root: Path, tool: Tool, steps: Progress, lock_name: str | None = None) -> AbstractContextManager[None]:
    return exclusive(
        root / ".locks" / f"{lock_name or tool.name}.lock", steps, f"waiting for another process building {tool.name}"
    )


def _install_plugin(tool: Tool, target: Path, pdir: Path, steps: Progress) -> None:
    """Places the binary as `$PULUMI_HOME/plugins/<kind>-<name>-v<version>/<binary>`, the layout
    `pulumi plugin install <kind> <name> <version> --file <binary>` produces."""
    assert tool.plugin is not None
    steps.say(f"installing plugin {tool.plugin.kind} {tool.plugin.name} v{tool.version} into {pdir.parent.parent}")
    pdir.parent.mkdir(parents=True, exist_ok=True)
    staged = pdir.parent / f".{pdir.name}.{os.getpid()}"
    rmtree(staged)
    staged.mkdir()
    shutil.copy2(target / "bin" / tool.plugin.binary, staged / tool.plugin.binary)
    built = (read_manifest(target) or {}).get("binaries", {}).get(tool.plugin.binary, {})
    (staged / PLUGIN_MARKER).write_text(str(built.get("sha256", "")) + "\n")
    old = pdir.parent / f".{pdir.name}.old.{os.getpid()}"
    if pdir.exists():
        os.rename(pdir, old)
    os.rename(staged, pdir)
    Path(f"{pdir}.partial").unlink(missing_ok=True)
    rmtree(old)
