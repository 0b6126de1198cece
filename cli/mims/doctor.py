"""`mims doctor`: what this machine has of what mims needs, one `Check` per thing, nothing changed.

States: `ok`; `warn` (works, or is needed only for some uses, or mims can fix it by itself, e.g. a tool
`mims toolchain install` will build); `missing` (needed and absent or unusable). A check is
`blocking` when a required tool is missing and cannot be built here (no usable `go`, or a cache
directory mims cannot write): the command then exits with `ToolchainError`.
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
from mims.errors import ToolchainError
from mims.toolchain import Tool, ToolStatus

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
    """Every check, in the order a person reads them. Builds, downloads and changes nothing; runs each
    built tool's version check (tools.yaml) and `go env GOVERSION`."""
    go_min, tools = toolchain.load_tools()
    statuses = toolchain.status(cache_dir)
    root = toolchain.toolchain_dir(cache_dir)
    to_build = [s.name for s in statuses if s.state != "present"]
    go = go_check(go_min, needed=bool(to_build))
    cache = writable_check("toolchain dir", root, needed_now=bool(to_build))
    cannot_build = " and ".join(f"the {c.name} row" for c in (go, cache) if c.state != "ok")
    checks = [python_check(), mims_check(), cache, writable_check("mims home", paths.home_dir())]
    checks += [tool_check(tools[s.name], s, cannot_build) for s in statuses]
    checks += [go, sdk_check("pulumi", tools["pulumi"]),
               sdk_check("pulumi-kubernetes", tools["pulumi-kubernetes"]),
               container_runtime_check(), passphrase_check()]
    return checks


def blocking_error(checks: list[Check]) -> ToolchainError | None:
    """The error to exit with when a required tool is missing and cannot be built here, else None."""
    blocked = [c.name.removeprefix("tool ") for c in checks if c.blocking]
    if not blocked:
        return None
    reasons = "; ".join(f"{c.name}: {c.detail}" for c in checks
                        if c.name in ("go", "toolchain dir") and c.state != "ok")
    return ToolchainError(f"{', '.join(blocked)} {'is' if len(blocked) == 1 else 'are'} not built and "
                          f"cannot be built here ({reasons})", tool=blocked[0])


# --------------------------------------------------------------------------------------------------
# The checks


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < PYTHON_MIN:
        return Check("python", "missing", f"{version} at {sys.executable}",
                     fix=f"use Python {'.'.join(map(str, PYTHON_MIN))} or newer")
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
    return Check(name, "missing" if needed_now else "warn", f"{path}: {reason}",
                 fix="set MIMS_CACHE_DIR" if name == "toolchain dir" else "set MIMS_HOME")


def tool_check(tool: Tool, state: ToolStatus, cannot_build: str = "") -> Check:
    """A tool present (and running: its tools.yaml checks pass), or missing: a warning when it can be
    built here, blocking when it cannot (`cannot_build` says why)."""
    name = f"tool {tool.name}"
    if state.state == "present":
        failure = _run_tool_checks(tool, state)
        if failure:
            return Check(name, "missing", f"{tool.version} in {state.dir.name}/ does not run: {failure}",
                         fix=f"remove {state.dir}, then `mims toolchain install {tool.name}`")
        built = f", built in {state.build_seconds:.0f}s" if state.build_seconds is not None else ""
        return Check(name, "ok", f"{tool.version} in {state.dir.name}/{built}")
    what = "not built yet" if state.state == "missing" else "stale (recipe changed or build incomplete)"
    detail = f"{tool.version} {what} ({tool.module}@{tool.module_version})"
    if not cannot_build:
        return Check(name, "warn", detail, fix=f"`mims toolchain install {tool.name}` builds it")
    return Check(name, "missing", f"{detail}; cannot be built here",
                 fix=f"see {cannot_build}, then `mims toolchain install {tool.name}`", blocking=True)


def _run_tool_checks(tool: Tool, state: ToolStatus) -> str:
    """Runs the `check` commands of tools.yaml against the built binaries; the first failure, or ''.
    Pulumi gets a throw-away PULUMI_HOME (it writes a log even for `pulumi version`)."""
    with tempfile.TemporaryDirectory(prefix="mims-doctor-") as scratch:
        return _first_failure(tool, state, {**os.environ, "PULUMI_HOME": scratch,
                                            "PULUMI_SKIP_UPDATE_CHECK": "true"})


def _first_failure(tool: Tool, state: ToolStatus, env: dict[str, str]) -> str:
    for binary, check in tool.check.items():
        cmd = [str(state.binaries[binary]), *(tool.expand(a) for a in check.args)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                                  timeout=RUN_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"`{binary} {' '.join(check.args)}`: {exc}"
        if tool.expand(check.expect) not in proc.stdout + proc.stderr:
            return f"`{binary} {' '.join(check.args)}` printed no {tool.expand(check.expect)!r}"
    return ""


def go_check(minimum: str, needed: bool) -> Check:
    """`go` is needed only to build missing tools; it is used with GOTOOLCHAIN=local."""
    path = shutil.which("go")
    purpose = "needed to build the missing tools" if needed else "not needed: every tool is built"
    if path is None:
        return Check("go", "missing" if needed else "ok", f"not on PATH ({purpose})",
                     fix=f"install Go {minimum} or newer" if needed else "")
    try:
        version = subprocess.run([path, "env", "GOVERSION"], capture_output=True, text=True, check=True,
                                 timeout=RUN_TIMEOUT,
                                 env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("go", "missing" if needed else "warn", f"{path}: `go env GOVERSION` failed: {exc}")
    if minimum and _version_tuple(version) < _version_tuple(minimum):
        return Check("go", "missing" if needed else "warn",
                     f"{version} at {path} is older than go{minimum} ({purpose})",
                     fix=f"install Go {minimum} or newer (mims does not download Go)")
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
            return Check(name, "warn", f"{version}, but the toolchain builds plugin {tool.plugin.name} "
                                       f"v{tool.version} and the SDK asks for v{version}",
                         fix=f"pip install {distribution}=={tool.version}")
        return Check(name, "ok", f"{version} (equals plugin {tool.plugin.name} v{tool.version})")
    if _version_tuple(tool.version) < _version_tuple(version):
        return Check(name, "warn", f"{version}, newer than the {tool.name} CLI {tool.version} mims builds",
                     fix=f"pip install {distribution}<={tool.version}")
    return Check(name, "ok", f"{version} (CLI {tool.version}; a newer CLI supports an older SDK)")


def container_runtime_check() -> Check:
    """Only kind clusters need one, and a running one: a docker CLI without its daemon is no help.
    The simulated cluster runs plain processes."""
    for runtime in CONTAINER_RUNTIMES:
        path = shutil.which(runtime)
        if path is None:
            continue
        try:
            answer = subprocess.run([path, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                    text=True, timeout=RUN_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError):
            answer = None
        if answer is None or answer.returncode != 0:
            return Check("container runtime", "warn", f"{runtime} is at {path} but its engine does not answer "
                                                      f"(needed only for kind clusters)")
        return Check("container runtime", "ok", f"{runtime} {answer.stdout.strip()} at {path}")
    return Check("container runtime", "warn", "neither docker nor podman is on PATH (needed only for kind "
                                              "clusters; the simulated cluster needs none)")


def passphrase_check() -> Check:
    """Where the passphrase that encrypts stack secrets comes from; never its value."""
    if os.environ.get(PASSPHRASE_ENV):
        return Check("passphrase", "ok", f"from {PASSPHRASE_ENV}")
    path = paths.home_dir() / "state" / "passphrase"
    if path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            return Check("passphrase", "warn", f"from {path}, readable by others (mode {mode:04o})",
                         fix=f"chmod 600 {path}")
        return Check("passphrase", "ok", f"from {path}")
    return Check("passphrase", "ok", f"will be created on first use in {path} (mode 0600), "
                                     f"or set {PASSPHRASE_ENV}")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])
