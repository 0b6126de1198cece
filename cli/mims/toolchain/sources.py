"""Where a tool comes from when it is not in the toolchain dir yet, besides a build (build.py):

    present   its binaries already on this machine at the right version: in MIMS_TOOLCHAIN_SEARCH_PATH,
              on PATH, and for a provider plugin in Pulumi's plugin dirs; used through symlinks
    download  the project's official release (tools.yaml `download:`), checked against its published
              sha256 (or one pinned in tools.yaml when the project publishes none)
    build     `go` from the Go module proxy (build.py)

`install()` tries them in that order, restricted by `--source` / MIMS_TOOLCHAIN_SOURCES; MIMS_OFFLINE=1
rules out every download (no release download, no module zip; go runs with GOPROXY=off). A source that
cannot provide a tool raises `Unavailable` with a one-line reason, and install() tries the next one.

Whatever the source, a binary counts only when the tool's `check` of tools.yaml finds its version in
the output, as a whole version (`v1.33.13` is not `v1.33.13-dirty`); a provider plugin, which has no
version flag, is started and asked its version over its gRPC interface (GetPluginInfo).
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mims import __version__
from mims.errors import UsageError

if TYPE_CHECKING:
    from mims.toolchain.build import Tool

SOURCES = ("present", "download", "build")
SOURCES_ENV = "MIMS_TOOLCHAIN_SOURCES"
SEARCH_PATH_ENV = "MIMS_TOOLCHAIN_SEARCH_PATH"
OFFLINE_ENV = "MIMS_OFFLINE"
PLATFORMS = ("linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64")
DEFAULT_GOPROXY = "https://proxy.golang.org,direct"
TIMEOUT = 10.0        # seconds to connect, and between two reads: one attempt, no retries
CHECK_TIMEOUT = 60    # seconds for a version check
PLUGIN_TIMEOUT = 20   # seconds for a plugin to print its port and answer GetPluginInfo
CHECKSUMS_LIMIT = 1 << 20

Say = Callable[[str], None]


class Unavailable(Exception):
    """This source cannot provide the tool; the message says why, in one line. `verdict` is how
    install() reports it: "unavailable" (nothing usable there) or "rejected" (found, but wrong)."""

    def __init__(self, reason: str, verdict: str = "unavailable") -> None:
        super().__init__(reason)
        self.verdict = verdict


# --------------------------------------------------------------------------------------------------
# Which sources


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
        raise UsageError(f"{origin}: unknown source {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(SOURCES)}")
    chosen = tuple(s for s in SOURCES if s in names)
    if offline():
        chosen = tuple(s for s in chosen if s != "download")
        if not chosen:
            raise UsageError(f"{OFFLINE_ENV}=1 rules out downloads, the only source {origin} allows")
    return chosen


def skip_reason(tool: Tool, source: str) -> str:
    """Why `source` does not apply to `tool` at all (tools.yaml gives it no way), or ''."""
    if source == "present":
        unverifiable = [b for b in tool.binaries if not verifiable(tool, b)]
        if unverifiable:
            return (f"tools.yaml gives no version check for {', '.join(unverifiable)}, so a copy found on "
                    f"this machine cannot be verified")
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


# --------------------------------------------------------------------------------------------------
# Checks


def printed(expect: str, text: str) -> bool:
    """`expect` occurs in `text` as a whole version: not followed by more version characters
    (`v1.33.13-dirty`, `3.6.160`) nor preceded by a digit or dot (`10.8.0` for `0.8.0`)."""
    return re.search(r"(?<![0-9.])" + re.escape(expect) + r"(?![0-9A-Za-z.+-])", text) is not None


def check_env(scratch: str) -> dict[str, str]:
    """The environment checks run in: Pulumi gets a throw-away PULUMI_HOME (it writes a log even for
    `pulumi version`), no update check and no plugin downloads."""
    return {**os.environ, "PULUMI_HOME": scratch, "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}


def verifiable(tool: Tool, binary: str) -> bool:
    return binary in tool.check or (tool.plugin is not None and tool.plugin.binary == binary)


def verify_binary(tool: Tool, binary: str, path: Path, env: Mapping[str, str]) -> str:
    """The reason `path` is not `binary` at the tool's version, or '' (also when nothing can tell)."""
    check = tool.check.get(binary)
    if check is not None:
        args = [tool.expand(a) for a in check.args]
        expect = tool.expand(check.expect)
        shown = " ".join([binary, *args])
        try:
            proc = subprocess.run([str(path), *args], capture_output=True, text=True, errors="replace",
                                  env=dict(env), timeout=CHECK_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"`{shown}` did not run: {exc}"
        text = proc.stdout + proc.stderr
        if not printed(expect, text):
            return f"`{shown}` printed {_first_line(text)!r}, not {expect!r}"
        return ""
    if tool.plugin is not None and tool.plugin.binary == binary:
        try:
            version = plugin_version(path, env)
        except Unavailable as exc:
            return str(exc)
        if version.removeprefix("v") != tool.version:
            return f"the plugin says it is version {version!r}, not {tool.version!r}"
    return ""


def verify(tool: Tool, binaries: Mapping[str, Path]) -> str:
    """The first failure of the tool's checks over `binaries`, or ''."""
    with tempfile.TemporaryDirectory(prefix="mims-check-") as scratch:
        env = check_env(scratch)
        for binary, path in binaries.items():
            failure = verify_binary(tool, binary, path, env)
            if failure:
                return failure
    return ""


def plugin_version(path: Path, env: Mapping[str, str]) -> str:
    """Starts a Pulumi resource provider as the engine does (it prints the port it serves gRPC on) and
    asks it GetPluginInfo; stops it with SIGINT, as the engine does."""
    try:
        import grpc
        from google.protobuf import empty_pb2
        from pulumi.runtime.proto import provider_pb2_grpc
    except ImportError as exc:  # the Pulumi SDK mims depends on brings both
        raise Unavailable(f"cannot ask {path.name} its version: {exc}") from exc
    try:
        proc = subprocess.Popen([str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=dict(env), start_new_session=True)
    except OSError as exc:
        raise Unavailable(f"{path} did not start: {exc}") from exc
    try:
        line = _read_line(proc, PLUGIN_TIMEOUT)
        if not line.strip().isdigit():
            raise Unavailable(f"{path} printed {line.strip()[:80]!r}, not the port of a Pulumi plugin")
        with grpc.insecure_channel(f"127.0.0.1:{line.strip()}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            return str(stub.GetPluginInfo(empty_pb2.Empty(), timeout=PLUGIN_TIMEOUT).version)
    except grpc.RpcError as exc:
        raise Unavailable(f"{path} did not answer GetPluginInfo: {exc.code().name}") from exc
    finally:
        _stop(proc)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    fd, data, deadline = proc.stdout.fileno(), b"", time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise Unavailable(f"{proc.args[0]} printed no port within {timeout:.0f}s")
        chunk = os.read(fd, 256)
        if not chunk:
            raise Unavailable(f"{proc.args[0]} exited (status {proc.wait()}) before printing its port")
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:100] if lines else ""


# --------------------------------------------------------------------------------------------------
# present: binaries already on this machine


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


# --------------------------------------------------------------------------------------------------
# download: official releases


@dataclass(frozen=True)
class Download:
    """A tools.yaml `download:` entry. `url` and `checksums` are templates: {version}, {os}, {arch},
    {ext} and, for one file per binary, {binary}."""

    url: str
    checksums: str = ""                                         # the published sha256 list (or one hash)
    sha256: Mapping[str, str] = field(default_factory=dict)     # pinned, by os/arch, when none is published
    paths: Mapping[str, str] = field(default_factory=dict)      # binary -> path inside the archive
    platforms: tuple[str, ...] = PLATFORMS
    os_names: Mapping[str, str] = field(default_factory=dict)   # Go's os name -> the URL's
    arch_names: Mapping[str, str] = field(default_factory=dict)
    ext: Mapping[str, str] = field(default_factory=dict)        # os -> archive extension ({ext})

    @classmethod
    def parse(cls, spec: Any, binaries: Mapping[str, str], fail: Callable[[str], Exception]) -> Download:
        if not isinstance(spec, dict) or not spec.get("url"):
            raise fail("`download` needs a `url`")
        sha256 = {str(k): str(v).lower() for k, v in (spec.get("sha256") or {}).items()}
        if not spec.get("checksums") and not sha256:
            raise fail("`download` needs `checksums` (a URL) or pinned `sha256` values")
        url = str(spec["url"])
        paths = {str(k): str(v) for k, v in (spec.get("paths") or {}).items()}
        if any(b not in binaries for b in paths):
            raise fail("`download.paths` names a binary that is not among `binaries`")
        if "{binary}" not in url and not _is_archive(url) and len(binaries) != 1:
            raise fail("a `download.url` without {binary} must be an archive or the tool's only binary")
        # Without a checksum file only the pinned platforms can be verified.
        default = PLATFORMS if spec.get("checksums") else tuple(sha256)
        platforms = tuple(str(p) for p in spec.get("platforms") or default)
        return cls(url=url, checksums=str(spec.get("checksums") or ""), sha256=sha256, paths=paths,
                   platforms=platforms, os_names=_str_map(spec.get("os")), arch_names=_str_map(spec.get("arch")),
                   ext=_str_map(spec.get("ext")))

    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or self.url


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _is_archive(name: str) -> bool:
    return name.endswith((".tar.gz", ".tgz", ".zip", "{ext}"))


class Fetcher:
    """HTTP(S) for one install() run: one attempt per URL with TIMEOUT, and a host that could not be
    reached is not asked again (six tools behind one unreachable site fail once, not six times)."""

    def __init__(self) -> None:
        self.dead: dict[str, str] = {}

    def open(self, url: str):
        host = urllib.parse.urlsplit(url).hostname or url
        if host in self.dead:
            raise Unavailable(f"{host}: {self.dead[host]}")
        request = urllib.request.Request(url, headers={"User-Agent": f"mims/{__version__}"})
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"{host}: HTTP {exc.code} for {url}") from exc
        except (urllib.error.URLError, OSError) as exc:
            self.dead[host] = _why(exc)
            raise Unavailable(f"{host}: {self.dead[host]}") from exc

    def text(self, url: str) -> str:
        with self.open(url) as answer:
            try:
                return answer.read(CHECKSUMS_LIMIT).decode(errors="replace")
            except OSError as exc:
                raise Unavailable(f"{url}: {_why(exc)}") from exc

    def file(self, url: str, dest: Path, say: Say) -> str:
        """Saves `url` as `dest`; returns its sha256."""
        digest = hashlib.sha256()
        with self.open(url) as answer, dest.open("wb") as out:
            total = int(answer.headers.get("Content-Length") or 0)
            done, step = 0, 1
            try:
                for chunk in iter(lambda: answer.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if total and done * 4 >= total * step and done < total:
                        say(f"downloaded {done >> 20} of {total >> 20} MB")
                        step = done * 4 // total + 1
            except OSError as exc:
                raise Unavailable(f"{url}: interrupted after {done >> 20} MB: {_why(exc)}") from exc
        return digest.hexdigest()


def _why(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {TIMEOUT:.0f}s"
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return text[:1].lower() + text[1:]


@dataclass(frozen=True)
class ReleaseFile:
    url: str
    checksums: str       # the URL of the published checksum file, or '' when the sha256 is pinned
    sha256: str          # the pinned sha256, or ''
    name: str            # the file name the checksum file lists
    members: Mapping[str, str]  # binary -> path inside the archive (the binary itself for a bare file)


def release_files(tool: Tool, plat: str | None = None) -> list[ReleaseFile]:
    """The files of the tool's official release for `plat` (default: this machine's), from tools.yaml."""
    spec = tool.download
    assert spec is not None
    plat = plat or host_platform()
    os_name, arch = plat.split("/")
    values = {"version": tool.version, "os": spec.os_names.get(os_name, os_name),
              "arch": spec.arch_names.get(arch, arch), "ext": spec.ext.get(os_name, "")}

    def fill(template: str, binary: str = "") -> str:
        for key, value in {**values, "binary": binary}.items():
            template = template.replace("{" + key + "}", value)
        return template

    groups = [[b] for b in tool.binaries] if "{binary}" in spec.url else [list(tool.binaries)]
    files = []
    for binaries in groups:
        one = binaries[0] if len(binaries) == 1 else ""
        url = fill(spec.url, one)
        files.append(ReleaseFile(
            url=url, checksums=fill(spec.checksums, one) if spec.checksums else "",
            sha256="" if spec.checksums else spec.sha256.get(plat, ""),
            name=urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]),
            members={b: fill(spec.paths.get(b, b), b) for b in binaries}))
    return files


def download(tool: Tool, bin_dir: Path, work: Path, fetcher: Fetcher, say: Say) -> dict[str, str]:
    """Downloads the tool's official release into `bin_dir`, each file checked against its published
    (or pinned) sha256; returns binary -> URL. Unavailable when there is none or it does not match."""
    skip = skip_reason(tool, "download")
    if skip:
        raise Unavailable(skip)
    urls = {}
    for release in release_files(tool):
        expected = release.sha256
        if release.checksums:
            expected = _published_sha256(fetcher.text(release.checksums), release.name)
            if not expected:
                raise Unavailable(f"{release.checksums} lists no sha256 for {release.name}")
        say(f"downloading {release.url}")
        started = time.monotonic()
        got = fetcher.file(release.url, work / release.name, say)
        if got != expected:
            raise Unavailable(f"{release.name} has sha256 {got}, not the published {expected}",
                              verdict="rejected")
        say(f"downloaded {release.name} ({(work / release.name).stat().st_size >> 20} MB in "
            f"{time.monotonic() - started:.0f}s); sha256 matches")
        _extract(work / release.name, release.members, bin_dir)
        urls.update({b: release.url for b in release.members})
    return urls


def _published_sha256(text: str, name: str) -> str:
    """The sha256 for `name` in a checksum file: `<hash>  <name>` lines (sha256sum's format, `*name`
    and `./name` too), or a file holding just the hash (dl.k8s.io's `<binary>.sha256`)."""
    words = text.split()
    if len(words) == 1 and re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
        return words[0].lower()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            if parts[-1].lstrip("*").removeprefix("./") == name:
                return parts[0].lower()
    return ""


def _extract(archive: Path, members: Mapping[str, str], bin_dir: Path) -> None:
    """Copies `members` (binary -> path inside the archive) out of `archive` as `bin_dir/<binary>`;
    a download that is not an archive is the binary itself. Nothing else is extracted."""
    name = archive.name
    if name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tar:
            entries = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            for binary, member in members.items():
                entry = entries.get(member)
                source = tar.extractfile(entry) if entry is not None else None
                if source is None:
                    raise Unavailable(f"{name} holds no {member}", verdict="rejected")
                with source, (bin_dir / binary).open("wb") as out:
                    shutil.copyfileobj(source, out)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            known = set(zipped.namelist())
            for binary, member in members.items():
                if member not in known:
                    raise Unavailable(f"{name} holds no {member}", verdict="rejected")
                with zipped.open(member) as source, (bin_dir / binary).open("wb") as out:
                    shutil.copyfileobj(source, out)
    else:
        [binary] = members
        shutil.copyfile(archive, bin_dir / binary)
    for binary in members:
        (bin_dir / binary).chmod(0o755)


# --------------------------------------------------------------------------------------------------
# Data files of a tool that is not built (kwok's stages) from its Go module zip


def module_files(tool: Tool, out: Path, work: Path, fetcher: Fetcher | None, say: Say) -> str:
    """Copies the tool's `files:` out of its module zip, verified against tools.yaml's `module_sum`
    (the go.sum `h1:` hash): from Go's module cache when it holds the zip, else (when `fetcher` is
    given) from the GOPROXY module proxies. Returns where the zip came from ('' when no files)."""
    if not tool.files:
        return ""
    where = f"{tool.module}@{tool.module_version}"
    if not tool.module_sum:
        raise Unavailable(f"its files come from {where}, and tools.yaml pins no module_sum to verify it")
    rel = f"{_escape(tool.module)}/@v/{_escape(tool.module_version)}.zip"
    cached = _gomodcache() / "cache" / "download" / rel
    zip_path, origin, reasons = None, "", []
    if cached.is_file():
        if module_hash(cached) == tool.module_sum:
            zip_path, origin = cached, str(cached)
        else:
            reasons.append(f"{cached} does not match module_sum")
    if zip_path is None and fetcher is None:
        raise Unavailable(f"its files come from {where}, which is not in the Go module cache "
                          f"({cached.parent}), and nothing is downloaded" + _joined(reasons))
    for proxy in _goproxies() if zip_path is None else []:
        url = f"{proxy}/{rel}"
        say(f"fetching {tool.module_version} of {tool.module} for its data files from {proxy}")
        try:
            fetcher.file(url, work / "module.zip", say)  # type: ignore[union-attr]
        except Unavailable as exc:
            reasons.append(str(exc))
            continue
        if module_hash(work / "module.zip") != tool.module_sum:
            reasons.append(f"{url} does not match module_sum")
            continue
        zip_path, origin = work / "module.zip", url
        break
    if zip_path is None:
        raise Unavailable(f"cannot get {where} for its data files" + _joined(reasons or ["GOPROXY=off"]))
    prefix = f"{where}/"
    with zipfile.ZipFile(zip_path) as zipped:
        known = set(zipped.namelist())
        for dest, source in tool.files.items():
            if prefix + source not in known:
                raise Unavailable(f"{source} is not in {where}", verdict="rejected")
            (out / dest).parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(prefix + source) as src, (out / dest).open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return origin


def _joined(reasons: list[str]) -> str:
    return f" ({'; '.join(reasons)})" if reasons else ""


def module_hash(zip_path: Path) -> str:
    """The `h1:` hash of a module zip, as in go.sum (golang.org/x/mod/sumdb/dirhash.HashZip)."""
    lines = []
    with zipfile.ZipFile(zip_path) as zipped:
        for name in sorted(zipped.namelist()):
            lines.append(f"{hashlib.sha256(zipped.read(name)).hexdigest()}  {name}\n")
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()


def _escape(path: str) -> str:
    """The module proxy's case encoding: an upper-case letter becomes `!` and its lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def _gomodcache() -> Path:
    if os.environ.get("GOMODCACHE"):
        return Path(os.environ["GOMODCACHE"])
    gopath = os.environ.get("GOPATH", "").split(os.pathsep)[0]
    return Path(gopath or Path.home() / "go") / "pkg" / "mod"


def _goproxies() -> list[str]:
    """The proxies of GOPROXY that serve over HTTP(S) or file://, up to `off`; `direct` (version
    control) is for go alone."""
    result = []
    for entry in re.split(r"[,|]", os.environ.get("GOPROXY") or DEFAULT_GOPROXY):
        entry = entry.strip()
        if entry == "off":
            break
        if entry.startswith(("https://", "http://", "file://")):
            result.append(entry.rstrip("/"))
    return result
