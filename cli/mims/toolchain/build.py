"""Installs the tools of `tools.yaml`, once, into `<cache>/toolchain/<name>-<version>/`: each from the
first source that has it (sources.py: binaries already on this machine, the official release download,
or a build with `go` from the Go module proxy, which is this module's own business).

Layout of the toolchain directory (default `~/.cache/mims/toolchain`, or `$MIMS_CACHE_DIR/toolchain`):

    <name>-<version>/bin/<binary>      the binaries (symlinks to them when found on this machine)
    <name>-<version>/share/...         data files copied from the module (kwok's stages)
    <name>-<version>/tool.json         where it came from (source), which recipe (digest), how long it took
    pulumi-home/plugins/<kind>-<name>-v<version>/<binary>   provider plugins (PULUMI_HOME)
    .locks/<name>.lock                 one flock per tool: concurrent installs build it once
    .work/                             writable module copies while building (removed afterwards)
    .logs/<name>-<version>.log         full output of the last build of a tool

A tool counts as installed when its directory holds a tool.json whose recipe digest matches the
current `tools.yaml` entry and every binary is there (for linked binaries: unchanged since); anything
else is installed again. Whatever the source, a tool is put together in `.work/` and appears by one
rename, so a reader never sees half a tool. `go` runs with GOTOOLCHAIN=local: it never downloads a Go.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mims import paths
from mims.errors import ToolchainError
from mims.toolchain import sources as _src
from mims.toolchain.sources import Download, Unavailable

TOOLS_FILE = Path(__file__).with_name("tools.yaml")
MANIFEST = "tool.json"
PLUGIN_MARKER = ".mims-sha256"  # beside a placed plugin binary: the sha256 from the tool's manifest
TAIL_LINES = 25
CHECK_TIMEOUT = 60
# Keys of a tools.yaml entry that do not change what a build produces: editing them keeps built tools.
NOT_IN_DIGEST = ("download", "module_sum")
VERBS = {"present": "linked", "download": "downloaded", "build": "built"}

# progress(tool name, message): what the installer is doing, for a spinner or a log line.
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class Check:
    args: tuple[str, ...]
    expect: str


@dataclass(frozen=True)
class GenerateStep:
    dir: str
    run: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plugin:
    kind: str
    name: str
    binary: str


@dataclass(frozen=True)
class Tool:
    """One entry of tools.yaml (see the comment at its top for the recipe kinds)."""

    name: str
    version: str
    module: str
    module_version: str
    recipe: str
    binaries: Mapping[str, str]
    ldflags: str = ""
    tags: tuple[str, ...] = ()
    local_replaces: str | Mapping[str, str] | None = None
    generate: tuple[GenerateStep, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    check: Mapping[str, Check] = field(default_factory=dict)
    plugin: Plugin | None = None
    download: Download | None = None
    module_sum: str = ""  # go.sum's h1: hash of the module zip; verifies `files` taken from it unbuilt
    spec: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def dir_name(self) -> str:
        return f"{self.name}-{self.version}"

    def expand(self, text: str) -> str:
        """`{version}`, `{major}`, `{minor}` of the tool's version in ldflags, commands and checks."""
        major, minor = (self.version.split(".") + ["", ""])[:2]
        return text.replace("{version}", self.version).replace("{major}", major).replace("{minor}", minor)

    def digest(self) -> str:
        """Changes whenever the recipe does; a tool installed with another digest is installed again.
        Where the tool may be downloaded from (NOT_IN_DIGEST) is not part of the recipe."""
        spec = {k: v for k, v in self.spec.items() if k not in NOT_IN_DIGEST}
        text = json.dumps({"spec": spec, "name": self.name}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class InstalledTool:
    name: str
    version: str
    dir: Path
    binaries: dict[str, Path]
    built: bool  # True when this call installed it (from any source), False when it was already there
    source: str = "build"  # "present", "download" or "build": where the installed tool came from

    def __getitem__(self, binary: str) -> Path:
        return self.binaries[binary]


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


# --------------------------------------------------------------------------------------------------
# tools.yaml


def load_tools(path: Path | None = None) -> tuple[str, dict[str, Tool]]:
    """The minimum Go version and the tools, by name, in file order."""
    path = path or TOOLS_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ToolchainError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("tools"), dict):
        raise ToolchainError(f"{path}: expected a mapping with `tools:`")
    tools = {name: _tool(name, spec, path) for name, spec in raw["tools"].items()}
    return str(raw.get("go", "")), tools


def _tool(name: str, spec: Any, path: Path) -> Tool:
    def fail(message: str) -> ToolchainError:
        return ToolchainError(f"{path}: tool {name}: {message}", tool=name)

    if not isinstance(spec, dict):
        raise fail("expected a mapping")
    for key in ("version", "module", "module_version", "recipe", "binaries"):
        if not spec.get(key):
            raise fail(f"`{key}` is missing")
    recipe = spec["recipe"]
    if recipe not in ("install", "main-module"):
        raise fail(f"unknown recipe {recipe!r} (install or main-module)")
    if recipe == "install" and (spec.get("local_replaces") or spec.get("generate")):
        raise fail("`local_replaces` and `generate` need recipe main-module")
    binaries = spec["binaries"]
    if not isinstance(binaries, dict) or not all(isinstance(v, str) for v in binaries.values()):
        raise fail("`binaries` must map binary names to package paths")
    checks = {}
    for binary, check in (spec.get("check") or {}).items():
        if binary not in binaries:
            raise fail(f"check for unknown binary {binary!r}")
        checks[binary] = Check(tuple(str(a) for a in check.get("args", [])), str(check["expect"]))
    plugin = None
    if spec.get("plugin"):
        p = spec["plugin"]
        plugin = Plugin(str(p["kind"]), str(p["name"]), str(p.get("binary") or next(iter(binaries))))
        if plugin.binary not in binaries:
            raise fail(f"plugin binary {plugin.binary!r} is not among `binaries`")
    steps = tuple(
        GenerateStep(str(s.get("dir", ".")), tuple(str(a) for a in s["run"]),
                     {str(k): str(v) for k, v in (s.get("env") or {}).items()})
        for s in spec.get("generate") or []
    )
    replaces = spec.get("local_replaces")
    if replaces is not None and not isinstance(replaces, (str, dict)):
        raise fail("`local_replaces` is a version or a map module -> version")
    download = Download.parse(spec["download"], binaries, fail) if spec.get("download") else None
    return Tool(
        name=name,
        version=str(spec["version"]),
        module=str(spec["module"]),
        module_version=str(spec["module_version"]),
        recipe=recipe,
        binaries={str(k): str(v) for k, v in binaries.items()},
        ldflags=" ".join(str(spec.get("ldflags") or "").split()),
        tags=tuple(str(t) for t in spec.get("tags") or ()),
        local_replaces=replaces,
        generate=steps,
        files={str(k): str(v) for k, v in (spec.get("files") or {}).items()},
        check=checks,
        plugin=plugin,
        download=download,
        module_sum=str(spec.get("module_sum") or ""),
        spec=spec,
    )


# --------------------------------------------------------------------------------------------------
# Where things are


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


# --------------------------------------------------------------------------------------------------
# Public entry points


def status(cache_dir: Path | None = None, tools_file: Path | None = None) -> list[ToolStatus]:
    """What is in the toolchain directory, tool by tool (nothing is installed or locked)."""
    root = toolchain_dir(cache_dir)
    _, tools = load_tools(tools_file)
    result = []
    for tool in tools.values():
        target = root / tool.dir_name
        manifest = _read_manifest(target)
        binaries = {b: target / "bin" / b for b in tool.binaries}
        if manifest is None and not target.exists():
            state = "missing"
        elif _is_current(tool, target, manifest):
            state = "present"
            pdir = plugin_dir(tool, root)
            if pdir is not None and not _plugin_current(tool, target, pdir):
                state = "stale"
        else:
            state = "stale"
        result.append(ToolStatus(
            name=tool.name, version=tool.version, dir=target, state=state, binaries=binaries,
            build_seconds=(manifest or {}).get("build_seconds"), plugin_dir=plugin_dir(tool, root),
            source=_source(manifest) if manifest else "", origin=_origin(manifest) if manifest else "",
        ))
    return result


def install(
    names: Iterable[str] | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
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
        raise ToolchainError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(tools)}",
                             tool=unknown[0])
    session = _Session(go_min, _src.resolve_sources(sources))
    root = toolchain_dir(cache_dir)
    say = progress or (lambda _tool, _message: None)
    result = {}
    failures: list[ToolchainError] = []
    for name in wanted:
        tool = tools[name]
        target = root / tool.dir_name
        installed = False
        if not _is_current(tool, target, _read_manifest(target)):
            with _locked(root, tool, say):
                # Another process may have installed it while we waited for the lock.
                if not _is_current(tool, target, _read_manifest(target)):
                    try:
                        _install_tool(tool, root, session, say)
                    except ToolchainError as exc:
                        failures.append(exc)
                        continue
                    installed = True
        else:
            say(tool.name, _already(tool, _read_manifest(target) or {}))
        pdir = plugin_dir(tool, root)
        if pdir is not None and not _plugin_current(tool, target, pdir):
            with _locked(root, tool, say, lock_name="pulumi-home"):
                if not _plugin_current(tool, target, pdir):
                    _install_plugin(tool, target, pdir, say)
        result[name] = InstalledTool(
            name=tool.name, version=tool.version, dir=target,
            binaries={b: target / "bin" / b for b in tool.binaries}, built=installed,
            source=_source(_read_manifest(target)),
        )
    if len(failures) == 1:
        raise failures[0]
    if failures:
        first = failures[0]
        raise ToolchainError("\n".join(str(f) for f in failures), tool=first.tool, command=first.command,
                             output_tail=first.output_tail)
    return result


# --------------------------------------------------------------------------------------------------
# Trying the sources in turn


@dataclass
class _Session:
    """What the tools of one install() share: the sources, one `go`, and the hosts found unreachable."""

    go_min: str
    sources: tuple[str, ...]
    fetcher: _src.Fetcher = field(default_factory=_src.Fetcher)
    go: _Go | None = None

    def find_go(self, tool: Tool) -> _Go:
        if self.go is None:
            self.go = _Go.find(self.go_min, tool)
        return self.go

    def network_fetcher(self) -> _src.Fetcher | None:
        """For the module zip a present tool's data files come from when Go's module cache lacks it:
        the Go module proxy is asked unless offline."""
        return None if _src.offline() else self.fetcher


def _install_tool(tool: Tool, root: Path, session: _Session, say: Progress) -> None:
    """The first source that can provide `tool` installs it; each one tried that cannot gets a progress
    line saying why and what comes next (sources tools.yaml gives the tool no way to use are passed
    over quietly). ToolchainError naming every source's reason when none can."""
    attempts: dict[str, tuple[str, ToolchainError | None]] = {}
    for source in session.sources:
        skip = _src.skip_reason(tool, source)
        if skip:
            attempts[source] = (skip, None)
    tried = [s for s in session.sources if s not in attempts]
    for index, source in enumerate(tried):
        try:
            if source == "present":
                _install_present(tool, root, session, say)
            elif source == "download":
                _install_download(tool, root, session, say)
            else:
                _build(tool, root, session.find_go(tool), say)
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
            headline = "not found on this machine" if (source, verdict) == ("present", "unavailable") \
                else f"{source} {verdict}"
            reason = attempts[source][0].splitlines()[0]
            say(tool.name, f"{headline} ({reason}); {_next_step(tool, tried[index + 1])}")
    raise _failure(tool, [(s, *attempts[s]) for s in session.sources])


def _next_step(tool: Tool, source: str) -> str:
    if source == "download":
        assert tool.download is not None
        return f"downloading from {tool.download.host()}"
    if _src.offline():
        return "building from the Go module cache (MIMS_OFFLINE=1: GOPROXY=off)"
    return "building from the Go module proxy"


def _failure(tool: Tool, attempts: list[tuple[str, str, ToolchainError | None]]) -> ToolchainError:
    lines = [f"cannot install {tool.name} {tool.version}:"]
    for source, reason, _error in attempts:
        first, *rest = reason.splitlines() or [""]
        lines.append(f"  {source}: {first}")
        lines += [f"    {line}" for line in rest]
    last = next((e for _, _, e in reversed(attempts) if e is not None), None)
    return ToolchainError("\n".join(lines), tool=tool.name, command=last.command if last else None,
                          output_tail=last.output_tail if last else "")


def _install_present(tool: Tool, root: Path, session: _Session, say: Progress) -> None:
    found = _src.find_present(tool, root)
    say(tool.name, "found " + ", ".join(f"{b} {tool.version} at {p}" for b, p in found.items()))
    with _staging(tool, root) as (work, out):
        for binary, path in found.items():
            os.symlink(os.path.abspath(path), out / "bin" / binary)
        files_from = _src.module_files(tool, out, work, session.network_fetcher(),
                                       lambda message: say(tool.name, message))
        manifest = _manifest(tool, out, "present", found={b: os.path.abspath(p) for b, p in found.items()})
        if files_from:
            manifest["files_from"] = files_from
        _finish(tool, root, out, work, manifest)
    say(tool.name, f"linked {tool.name} {tool.version} into {root / tool.dir_name}")


def _install_download(tool: Tool, root: Path, session: _Session, say: Progress) -> None:
    started = time.monotonic()
    with _staging(tool, root) as (work, out):
        step = lambda message: say(tool.name, message)  # noqa: E731
        urls = _src.download(tool, out / "bin", work, session.fetcher, step)
        for binary in tool.binaries:
            if _src.verifiable(tool, binary):
                say(tool.name, f"checking the downloaded {binary}")
        failure = _src.verify(tool, {b: out / "bin" / b for b in tool.binaries})
        if failure:
            raise Unavailable(f"the downloaded {failure}", verdict="rejected")
        files_from = _src.module_files(tool, out, work, session.fetcher, step)
        seconds = round(time.monotonic() - started, 1)
        manifest = _manifest(tool, out, "download", urls=urls, download_seconds=seconds)
        if files_from:
            manifest["files_from"] = files_from
        _finish(tool, root, out, work, manifest)
    say(tool.name, f"downloaded {tool.name} {tool.version} in {seconds:.0f}s")


@contextmanager
def _staging(tool: Tool, root: Path) -> Iterator[tuple[Path, Path]]:
    """A private work dir and the `out` dir a tool is put together in; removed afterwards."""
    work_root = root / ".work"
    work_root.mkdir(parents=True, exist_ok=True)
    work = work_root / f"{tool.dir_name}.{os.getpid()}"
    _rmtree(work)
    out = work / "out"
    (out / "bin").mkdir(parents=True)
    try:
        yield work, out
    finally:
        _rmtree(work)


def _manifest(tool: Tool, out: Path, source: str, **extra: Any) -> dict[str, Any]:
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


def _finish(tool: Tool, root: Path, out: Path, work: Path, manifest: Mapping[str, Any]) -> None:
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _replace_dir(out, root / tool.dir_name, work)


def _source(manifest: Mapping[str, Any] | None) -> str:
    return str((manifest or {}).get("source") or "build")  # tool.json files from before sources: built


def _origin(manifest: Mapping[str, Any]) -> str:
    source = _source(manifest)
    if source == "present":
        return ", ".join((manifest.get("found") or {}).values())
    if source == "download":
        return ", ".join(dict.fromkeys((manifest.get("urls") or {}).values()))
    return str(manifest.get("module") or "")


def _already(tool: Tool, manifest: Mapping[str, Any]) -> str:
    text = f"{tool.name} {tool.version} is already {VERBS.get(_source(manifest), 'installed')}"
    return text + (f" ({_origin(manifest)})" if _source(manifest) == "present" else "")


# --------------------------------------------------------------------------------------------------
# State checks


def _read_manifest(target: Path) -> dict | None:
    try:
        data = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_current(tool: Tool, target: Path, manifest: dict | None) -> bool:
    if manifest is None or manifest.get("digest") != tool.digest():
        return False
    if not all(os.access(target / "bin" / b, os.X_OK) for b in tool.binaries):
        return False
    if _source(manifest) == "present":  # linked: the file linked to must not have changed since
        for binary in tool.binaries:
            info = (target / "bin" / binary).stat()
            recorded = (manifest.get("binaries") or {}).get(binary) or {}
            if (info.st_size, info.st_mtime_ns) != (recorded.get("bytes"), recorded.get("mtime_ns")):
                return False
    return True


def _plugin_current(tool: Tool, target: Path, pdir: Path) -> bool:
    """The plugin dir holds the binary this tool's manifest describes (checked by the marker written
    when it was placed, and its size: hashing 150 MB on every `install()` would be slow)."""
    assert tool.plugin is not None
    installed = pdir / tool.plugin.binary
    if not os.access(installed, os.X_OK) or Path(f"{pdir}.partial").exists():
        return False
    built = ((_read_manifest(target) or {}).get("binaries") or {}).get(tool.plugin.binary) or {}
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


@contextmanager
def _locked(root: Path, tool: Tool, say: Progress, lock_name: str | None = None) -> Iterator[None]:
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{lock_name or tool.name}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(tool.name, f"waiting for another process building {tool.name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------------
# Go


@dataclass
class _Go:
    path: str
    version: str  # e.g. "go1.26.8"

    @classmethod
    def find(cls, minimum: str, tool: Tool) -> _Go:
        path = shutil.which("go")
        if path is None:
            raise ToolchainError(
                f"cannot build {tool.name} {tool.version}: `go` is not on PATH "
                f"(mims builds its tools from the Go module proxy; install Go {minimum or ''} or newer)",
                tool=tool.name)
        try:
            out = subprocess.run([path, "env", "GOVERSION"], capture_output=True, text=True, check=True,
                                 env=_go_env(), timeout=60).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolchainError(f"cannot build {tool.name}: `go env GOVERSION` failed: {exc}",
                                 tool=tool.name, command=[path, "env", "GOVERSION"]) from exc
        if minimum and _version_tuple(out) < _version_tuple(minimum):
            raise ToolchainError(
                f"cannot build {tool.name} {tool.version}: {out} is older than the go{minimum} the "
                f"toolchain needs (GOTOOLCHAIN=local: mims does not download Go itself)", tool=tool.name)
        return cls(path, out)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def _go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",      # never download a Go toolchain
        "GOWORK": "off",
        "GOFLAGS": "-buildvcs=false",  # the user's GOFLAGS (say -mod=vendor) must not leak in
    })
    if _src.offline():
        env["GOPROXY"] = "off"  # only what Go's module cache holds
    env.update(extra or {})
    return env


def _tail(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-TAIL_LINES:])


class _Runner:
    """Runs the build's commands, logging all output and keeping its tail for error messages."""

    def __init__(self, tool: Tool, log_path: Path) -> None:
        self.tool = tool
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.log = log_path.open("w")

    def close(self) -> None:
        self.log.close()

    def run(self, cmd: list[str], cwd: Path, env: Mapping[str, str], timeout: float | None = None) -> str:
        self.log.write(f"$ (cd {cwd} && {shlex.join(cmd)})\n")
        self.log.flush()
        if timeout is None:  # builds: stream into the log so it can be followed
            try:
                proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace")
            except OSError as exc:
                raise self.error(cmd, f"cannot run it: {exc}", "") from exc
            assert proc.stdout is not None
            chunks = []
            for line in proc.stdout:
                self.log.write(line)
                self.log.flush()
                chunks.append(line)
            text = "".join(chunks)
            if proc.wait() != 0:
                raise self.error(cmd, f"exited with status {proc.returncode}", _tail(text))
            return text
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=dict(env), stdout=subprocess.PIPE, check=False,
                                  stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode(errors="replace")
            self.log.write(out)
            raise self.error(cmd, f"did not finish within {timeout:.0f}s", _tail(out)) from exc
        except OSError as exc:
            raise self.error(cmd, f"cannot run it: {exc}", "") from exc
        self.log.write(proc.stdout)
        self.log.flush()
        if proc.returncode != 0:
            raise self.error(cmd, f"exited with status {proc.returncode}", _tail(proc.stdout))
        return proc.stdout

    def error(self, cmd: list[str], what: str, tail: str) -> ToolchainError:
        message = f"building {self.tool.name} {self.tool.version} failed: `{shlex.join(cmd)}` {what}"
        if tail:
            message += "\n" + "\n".join("  " + line for line in tail.splitlines())
        message += f"\n(full log: {self.log_path})"
        return ToolchainError(message, tool=self.tool.name, command=cmd, output_tail=tail)


# --------------------------------------------------------------------------------------------------
# Building


def _build(tool: Tool, root: Path, go: _Go, say: Progress) -> None:
    runner = _Runner(tool, root / ".logs" / f"{tool.dir_name}.log")
    started = time.monotonic()
    try:
        with _staging(tool, root) as (work, out):
            say(tool.name, f"downloading {tool.module}@{tool.module_version}")
            module_dir = _download(tool, go, runner, work)
            if tool.recipe == "main-module":
                src = work / "src"
                say(tool.name, "preparing a writable copy of the module")
                _copy_writable(module_dir, src)
                _edit_go_mod(tool, go, runner, src)
                for step in tool.generate:
                    say(tool.name, f"generating: {' '.join(step.run)} in {step.dir}")
                    env = _go_env({"GOFLAGS": "-mod=mod -buildvcs=false",
                                   **{k: tool.expand(v) for k, v in step.env.items()}})
                    runner.run([tool.expand(a) for a in step.run], src / step.dir, env)
                for binary, package in tool.binaries.items():
                    say(tool.name, f"building {binary} (go build {package})")
                    runner.run(_go_build_cmd(tool, go, ["build", "-mod=mod", "-o", str(out / "bin" / binary)],
                                             package), src, _go_env())
            else:
                for binary, package in tool.binaries.items():
                    target = f"{_join(tool.module, package)}@{tool.module_version}"
                    say(tool.name, f"building {binary} (go install {target})")
                    gobin = work / "gobin"
                    gobin.mkdir(exist_ok=True)
                    runner.run(_go_build_cmd(tool, go, ["install"], target), work,
                               _go_env({"GOBIN": str(gobin)}))
                    produced = list(gobin.iterdir())
                    if len(produced) != 1:
                        raise runner.error(["go", "install", target], f"left {len(produced)} files in GOBIN", "")
                    produced[0].rename(out / "bin" / binary)
            for dest, source in tool.files.items():
                src_file = module_dir / source
                if not src_file.is_file():
                    raise runner.error(["copy", source],
                                       f"failed: {source} is not in {tool.module}@{tool.module_version}", "")
                (out / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_file, out / dest)
            for binary, check in tool.check.items():
                say(tool.name, f"checking {binary} {' '.join(check.args)}")
                expect = tool.expand(check.expect)
                text = runner.run([str(out / "bin" / binary), *[tool.expand(a) for a in check.args]], work,
                                  _src.check_env(str(work / "pulumi-home")), timeout=CHECK_TIMEOUT)
                if not _src.printed(expect, text):
                    raise runner.error([binary, *check.args], f"printed no {expect!r}", text.strip()[-2000:])
            seconds = round(time.monotonic() - started, 1)
            _finish(tool, root, out, work, _manifest(tool, out, "build", go=go.version, build_seconds=seconds))
        say(tool.name, f"built {tool.name} {tool.version} in {seconds:.0f}s")
    finally:
        runner.close()


def _join(module: str, package: str) -> str:
    package = package.strip()
    if package in (".", "./", ""):
        return module
    return f"{module}/{package.removeprefix('./')}"


def _go_build_cmd(tool: Tool, go: _Go, verb: list[str], target: str) -> list[str]:
    cmd = [go.path, *verb, "-trimpath", "-buildvcs=false"]
    if tool.tags:
        cmd += ["-tags", ",".join(tool.tags)]
    if tool.ldflags:
        cmd += ["-ldflags", tool.expand(tool.ldflags)]
    return [*cmd, target]


def _download(tool: Tool, go: _Go, runner: _Runner, work: Path) -> Path:
    cmd = [go.path, "mod", "download", "-json", f"{tool.module}@{tool.module_version}"]
    try:
        text = runner.run(cmd, work, _go_env())
    except ToolchainError as exc:
        # `go mod download -json` reports the reason as JSON on stdout; show that, not the braces.
        reason = _json_error(exc.output_tail)
        if reason:
            raise runner.error(cmd, "failed", reason) from exc
        raise
    info = json.loads(text[text.index("{"):])
    if info.get("Error"):
        raise runner.error(cmd, "failed", info["Error"])
    return Path(info["Dir"])


def _json_error(text: str) -> str:
    match = re.search(r'"Error":\s*"((?:[^"\\]|\\.)*)"', text)
    return json.loads(f'"{match.group(1)}"') if match else ""


def _copy_writable(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644 | (os.stat(path).st_mode & 0o111))


def _edit_go_mod(tool: Tool, go: _Go, runner: _Runner, src: Path) -> None:
    """Drops replace lines that point at local paths (siblings absent from the module zip); a module
    required through one is required at its published version instead."""
    mod = json.loads(runner.run([go.path, "mod", "edit", "-json"], src, _go_env()))
    required = {r["Path"] for r in mod.get("Require") or []}
    args = []
    for rep in mod.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        if new.get("Version"):  # module => module@version: go install's refusal aside, it is fine here
            continue
        args.append("-dropreplace=" + old["Path"] + (f"@{old['Version']}" if old.get("Version") else ""))
        if old["Path"] in required:
            version = _published_version(tool, old["Path"])
            if not version:
                raise ToolchainError(
                    f"building {tool.name} {tool.version} failed: {tool.module} replaces {old['Path']} "
                    f"with the local path {new['Path']}, and tools.yaml gives no published version for it "
                    f"(local_replaces)", tool=tool.name)
            args.append(f"-require={old['Path']}@{version}")
    if args:
        runner.run([go.path, "mod", "edit", *args], src, _go_env())


def _published_version(tool: Tool, module: str) -> str:
    if isinstance(tool.local_replaces, str):
        return tool.local_replaces
    if isinstance(tool.local_replaces, Mapping):
        return str(tool.local_replaces.get(module) or "")
    return ""


def _replace_dir(new: Path, target: Path, work: Path) -> None:
    """Moves the finished build into place by rename; a stale build there is moved aside first."""
    if target.exists():
        old = work / "old"
        os.rename(target, old)
    os.rename(new, target)


def _install_plugin(tool: Tool, target: Path, pdir: Path, say: Progress) -> None:
    """Places the binary as `$PULUMI_HOME/plugins/<kind>-<name>-v<version>/<binary>`, the layout
    `pulumi plugin install <kind> <name> <version> --file <binary>` produces."""
    assert tool.plugin is not None
    say(tool.name, f"installing plugin {tool.plugin.kind} {tool.plugin.name} v{tool.version} "
                   f"into {pdir.parent.parent}")
    pdir.parent.mkdir(parents=True, exist_ok=True)
    staging = pdir.parent / f".{pdir.name}.{os.getpid()}"
    _rmtree(staging)
    staging.mkdir()
    shutil.copy2(target / "bin" / tool.plugin.binary, staging / tool.plugin.binary)
    built = (_read_manifest(target) or {}).get("binaries", {}).get(tool.plugin.binary, {})
    (staging / PLUGIN_MARKER).write_text(str(built.get("sha256", "")) + "\n")
    old = pdir.parent / f".{pdir.name}.old.{os.getpid()}"
    if pdir.exists():
        os.rename(pdir, old)
    os.rename(staging, pdir)
    Path(f"{pdir}.partial").unlink(missing_ok=True)
    _rmtree(old)


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        # A module copy interrupted mid-way keeps the module cache's read-only directories.
        for dirpath, _dirnames, _filenames in os.walk(path):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(path)
