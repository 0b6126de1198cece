"""`mims doctor`: what this machine has of what mims needs, one `Check` per thing, nothing changed.

States: `ok`; `warn` (works, or is needed only for some uses, or mims can fix it by itself, e.g. a tool
`mims toolchain install` will link, download or build); `missing` (needed and absent or unusable). A
check is `blocking` when a required tool is missing and no source can install it here (not on this
machine, no download allowed or released for this platform, no usable `go`), or the cache directory is
not writable: the command then exits with `ToolchainError`.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from mims import __version__, paths, toolchain
from mims.cluster import node
from mims.errors import ToolchainError, UsageError
from mims.toolchain import Tool, ToolStatus
from mims.toolchain import sources as toolchain_sources
from mims.toolchain.checks import printed
from mims.toolchain.present import find_present

PYTHON_MIN = (3, 11)
PASSPHRASE_ENV = "MIMS_PASSPHRASE"
CONTAINER_RUNTIMES = ("docker", "podman")
RUN_TIMEOUT = 20


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # "ok", "warn" or "missing"
    detail: str
    fix: str = ""
    blocking: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def run_checks(cache_dir: Path | None = None) -> list[Check]:
    """Every check, in the order a person reads them. Installs, downloads and changes nothing; runs each
    installed tool's version check (tools.yaml), `go env GOVERSION`, and for a missing tool the version
    checks of copies found on PATH (the `present` source)."""
    go_min, tools = toolchain.load_tools()
    statuses = toolchain.status(cache_dir)
    root = toolchain.toolchain_dir(cache_dir)
    to_install = [s.name for s in statuses if s.state != "present"]
    sources_row, sources = sources_check()
    cache = writable_check("toolchain dir", root, needed_now=bool(to_install))
    ways = {n: _other_ways(tools[n], root, sources) for n in to_install} if cache.state == "ok" else {}
    only_build = [n for n in to_install if not ways.get(n)]
    if "build" not in sources:
        go = Check("go", "ok", "not used: the toolchain sources leave out build")
    elif to_install and not only_build:
        go = go_check(go_min, needed=False, fallback_for=[n for n in to_install if not ways[n][0].startswith("links")])
    else:
        go = go_check(go_min, needed=bool(only_build))
    cannot_build = " and ".join(f"the {c.name} row" for c in (go, cache) if c.state != "ok")
    if "build" not in sources and cache.state == "ok":
        cannot_build = "the toolchain sources row"
    checks = [python_check(), mims_check(), cache, sources_row, writable_check("mims home", paths.home_dir())]
    checks += [tool_check(tools[s.name], s, cannot_build, ways.get(s.name)) for s in statuses]
    checks += [
        go,
        sdk_check("pulumi", tools["pulumi"]),
        sdk_check("pulumi-kubernetes", tools["pulumi-kubernetes"]),
        container_runtime_check(),
        node_packages_check(),
        passphrase_check(),
    ]
    return checks


def blocking_error(checks: list[Check]) -> ToolchainError | None:
    """The error to exit with when a required tool is missing and cannot be installed here, else None."""
    blocked = [c.name.removeprefix("tool ") for c in checks if c.blocking]
    if not blocked:
        return None
    reasons = "; ".join(
        f"{c.name}: {c.detail}"
        for c in checks
        if (c.name in ("go", "toolchain dir") and c.state != "ok") or c.name == "toolchain sources"
    )
    return ToolchainError(
        f"{', '.join(blocked)} {'is' if len(blocked) == 1 else 'are'} not installed and "
        f"cannot be installed here ({reasons})",
        tool=blocked[0],
    )


def sources_check() -> tuple[Check, tuple[str, ...]]:
    """The sources `mims toolchain install` tries (MIMS_TOOLCHAIN_SOURCES, MIMS_OFFLINE)."""
    env = toolchain_sources.SOURCES_ENV
    try:
        sources = toolchain_sources.resolve_sources()
    except UsageError as exc:
        return Check(
            "toolchain sources",
            "missing",
            str(exc),
            fix=f"set {env} to a comma list of {', '.join(toolchain_sources.SOURCES)}",
        ), ()
    notes = [f"{name}={os.environ[name]}" for name in (env, toolchain_sources.SEARCH_PATH_ENV) if os.environ.get(name)]
    if toolchain_sources.offline():
        notes.append(f"{toolchain_sources.OFFLINE_ENV}=1: no downloads")
    return Check("toolchain sources", "ok", ", ".join(sources) + (f" ({'; '.join(notes)})" if notes else "")), sources


def _other_ways(tool: Tool, root: Path, sources: tuple[str, ...]) -> list[str]:
    """How `mims toolchain install` would get a missing tool without building it: linking a copy found
    on this machine (checked now), or the official download (when allowed and released here)."""
    if "present" in sources and not toolchain_sources.skip_reason(tool, "present"):
        try:
            found = find_present(tool, root)
        except toolchain_sources.Unavailable:
            pass
        else:
            return [f"links {', '.join(str(p) for p in found.values())}"]
    if "download" in sources and tool.download is not None and not toolchain_sources.skip_reason(tool, "download"):
        return [f"downloads it from {tool.download.host()}"]
    return []


# --------------------------------------------------------------------------------------------------
# The checks


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < PYTHON_MIN:
        return Check(
            "python",
            "missing",
            f"{version} at {sys.executable}",
            fix=f"use Python {'.'.join(map(str, PYTHON_MIN))} or newer",
        )
    return Check("python", "ok", f"{version} at {sys.executable}")


def mims_check() -> Check:
    return Check("mims", "ok", f"{__version__} from {Path(__file__).parent}")


def writable_check(name: str, path: Path, needed_now: bool = True) -> Check:
    """`path` is writable, or can be created (its nearest existing parent is a writable directory).
    A toolchain dir holding every tool is only a warning: Pulumi merely notes plugin use in it."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = f"{existing} is not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"{existing} is not writable"
    else:
        where = "writable" if existing == path else f"will be created (in {existing})"
        return Check(name, "ok", f"{path}: {where}")
    return Check(
        name,
        "missing" if needed_now else "warn",
        f"{path}: {reason}",
        fix="set MIMS_CACHE_DIR" if name == "toolchain dir" else "set MIMS_HOME",
    )


def tool_check(tool: Tool, state: ToolStatus, cannot_build: str = "", ways: list[str] | None = None) -> Check:
    """A tool present (and running: its tools.yaml checks pass), or missing: a warning when it can be
    installed here (`ways` other than a build, e.g. "downloads it from dl.k8s.io"; a build unless
    `cannot_build` says why not), blocking when it cannot."""
    name = f"tool {tool.name}"
    if state.state == "present":
        failure = _run_tool_checks(tool, state)
        if failure:
            return Check(
                name,
                "missing",
                f"{tool.version} in {state.dir.name}/ does not run: {failure}",
                fix=f"remove {state.dir}, then `mims toolchain install {tool.name}`",
            )
        if state.source == "present":
            where = f", linked to {state.origin}"
        elif state.source == "download":
            where = ", downloaded"
        else:
            where = f", built in {state.build_seconds:.0f}s" if state.build_seconds is not None else ""
        return Check(name, "ok", f"{tool.version} in {state.dir.name}/{where}")
    what = "not installed yet" if state.state == "missing" else "stale (recipe changed or install incomplete)"
    detail = f"{tool.version} {what} ({tool.module}@{tool.module_version})"
    ways = list(ways or [])
    if not cannot_build and not any(w.startswith("links") for w in ways):
        ways.append("builds it")
    if ways:
        return Check(name, "warn", detail, fix=f"`mims toolchain install {tool.name}` {' or '.join(ways)}")
    return Check(
        name,
        "missing",
        f"{detail}; cannot be installed here",
        fix=f"see {cannot_build}, then `mims toolchain install {tool.name}`",
        blocking=True,
    )


def _run_tool_checks(tool: Tool, state: ToolStatus) -> str:
    """Runs the `check` commands of tools.yaml against the built binaries; the first failure, or ''.
    Pulumi gets a throw-away PULUMI_HOME (it writes a log even for `pulumi version`)."""
    with tempfile.TemporaryDirectory(prefix="mims-doctor-") as scratch:
        return _first_failure(tool, state, {**os.environ, "PULUMI_HOME": scratch, "PULUMI_SKIP_UPDATE_CHECK": "true"})


def _first_failure(tool: Tool, state: ToolStatus, env: dict[str, str]) -> str:
    for binary, check in tool.check.items():
        cmd = [str(state.binaries[binary]), *(tool.expand(a) for a in check.args)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, errors="replace", env=env, timeout=RUN_TIMEOUT, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"`{binary} {' '.join(check.args)}`: {exc}"
        if not printed(tool.expand(check.expect), proc.stdout + proc.stderr):
            return f"`{binary} {' '.join(check.args)}` printed no {tool.expand(check.expect)!r}"
    return ""


def go_check(minimum: str, needed: bool, fallback_for: list[str] | None = None) -> Check:
    """`go` is needed only to build missing tools; it is used with GOTOOLCHAIN=local. When the missing
    tools can be downloaded (`fallback_for`), go is what is left should that fail: its absence warns."""
    path = shutil.which("go")
    if fallback_for:
        purpose = f"needed only if {', '.join(fallback_for)} cannot be downloaded"
    else:
        purpose = "needed to build the missing tools" if needed else "not needed: every tool is installed"
    absent = "missing" if needed else "warn" if fallback_for else "ok"
    if path is None:
        return Check(
            "go", absent, f"not on PATH ({purpose})", fix=f"install Go {minimum} or newer" if absent != "ok" else ""
        )
    try:
        version = subprocess.run(
            [path, "env", "GOVERSION"],
            capture_output=True,
            text=True,
            check=True,
            timeout=RUN_TIMEOUT,
            env={**os.environ, "GOTOOLCHAIN": "local"},
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("go", "missing" if needed else "warn", f"{path}: `go env GOVERSION` failed: {exc}")
    if minimum and _version_tuple(version) < _version_tuple(minimum):
        return Check(
            "go",
            "missing" if needed else "warn",
            f"{version} at {path} is older than go{minimum} ({purpose})",
            fix=f"install Go {minimum} or newer (mims does not download Go)",
        )
    return Check("go", "ok", f"{version} at {path}" + ("" if needed else f" ({purpose})"))


def sdk_check(distribution: str, tool: Tool) -> Check:
    """The Python SDK next to the binary mims builds for it: pulumi-kubernetes asks the engine for the
    provider plugin at exactly its own version; the Pulumi CLI must not be older than the SDK."""
    name = f"{distribution} SDK"
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return Check(name, "missing", "not installed", fix=f"pip install mims (it pins {distribution})")
    if tool.plugin is not None:
        if version != tool.version:
            return Check(
                name,
                "warn",
                f"{version}, but the toolchain builds plugin {tool.plugin.name} "
                f"v{tool.version} and the SDK asks for v{version}",
                fix=f"pip install {distribution}=={tool.version}",
            )
        return Check(name, "ok", f"{version} (equals plugin {tool.plugin.name} v{tool.version})")
    if _version_tuple(tool.version) < _version_tuple(version):
        return Check(
            name,
            "warn",
            f"{version}, newer than the {tool.name} CLI {tool.version} mims builds",
            fix=f"pip install {distribution}<={tool.version}",
        )
    return Check(name, "ok", f"{version} (CLI {tool.version}; a newer CLI supports an older SDK)")


def container_runtime_check() -> Check:
    """Only kind clusters need one, and a running one: a docker CLI without its daemon is no help.
    The simulated cluster runs plain processes."""
    for runtime in CONTAINER_RUNTIMES:
        path = shutil.which(runtime)
        if path is None:
            continue
        try:
            answer = subprocess.run(
                [path, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            answer = None
        if answer is None or answer.returncode != 0:
            return Check(
                "container runtime",
                "warn",
                f"{runtime} is at {path} but its engine does not answer (needed only for kind clusters)",
            )
        return Check("container runtime", "ok", f"{runtime} {answer.stdout.strip()} at {path}")
    return Check(
        "container runtime",
        "warn",
        "neither docker nor podman is on PATH (needed only for kind clusters; the simulated cluster needs none)",
    )


def node_packages_check() -> Check:
    """Only real-node clusters (`mims cluster create --node`) need containerd, runc, the CNI plugins
    and the firewall tools, from the system's packages."""
    missing = node.missing_packages()
    if not missing:
        return Check("real-node packages", "ok", "containerd, runc, CNI plugins, iptables, ipset, conntrack")
    return Check(
        "real-node packages",
        "warn",
        f"missing {', '.join(missing)} (needed only for real-node clusters)",
        fix=f"{node.INSTALL_COMMAND}, or `mims cluster create --node --install-packages`",
    )


def passphrase_check() -> Check:
    """Where the passphrase that encrypts stack secrets comes from; never its value."""
    if os.environ.get(PASSPHRASE_ENV):
        return Check("passphrase", "ok", f"from {PASSPHRASE_ENV}")
    path = paths.home_dir() / "state" / "passphrase"
    if path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            return Check(
                "passphrase", "warn", f"from {path}, readable by others (mode {mode:04o})", fix=f"chmod 600 {path}"
            )
        return Check("passphrase", "ok", f"from {path}")
    return Check("passphrase", "ok", f"will be created on first use in {path} (mode 0600), or set {PASSPHRASE_ENV}")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])
