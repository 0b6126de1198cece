"""The `download` source: the project's official release (tools.yaml `download:`), each file checked
against its published sha256 (or one pinned in tools.yaml when the project publishes none); only the
binaries are taken out of an archive."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mims import __version__
from mims.toolchain.recipes import Tool
from mims.toolchain.sources import Say, Unavailable, host_platform, skip_reason

TIMEOUT = 10.0  # seconds to connect, and between two reads: one attempt, no retries
CHECKSUMS_LIMIT = 1 << 20


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
    checksums: str  # the URL of the published checksum file, or '' when the sha256 is pinned
    sha256: str  # the pinned sha256, or ''
    name: str  # the file name the checksum file lists
    members: Mapping[str, str]  # binary -> path inside the archive (the binary itself for a bare file)


def release_files(tool: Tool, plat: str | None = None) -> list[ReleaseFile]:
    """The files of the tool's official release for `plat` (default: this machine's), from tools.yaml."""
    spec = tool.download
    assert spec is not None
    plat = plat or host_platform()
    os_name, arch = plat.split("/")
    values = {
        "version": tool.version,
        "os": spec.os.get(os_name, os_name),
        "arch": spec.arch.get(arch, arch),
        "ext": spec.ext.get(os_name, ""),
    }

    def fill(template: str, binary: str = "") -> str:
        for key, value in {**values, "binary": binary}.items():
            template = template.replace("{" + key + "}", value)
        return template

    groups = [[b] for b in tool.binaries] if "{binary}" in spec.url else [list(tool.binaries)]
    files = []
    for binaries in groups:
        one = binaries[0] if len(binaries) == 1 else ""
        url = fill(spec.url, one)
        files.append(
            ReleaseFile(
                url=url,
                checksums=fill(spec.checksums, one) if spec.checksums else "",
                sha256="" if spec.checksums else spec.sha256.get(plat, ""),
                name=urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]),
                members={b: fill(spec.paths.get(b, b), b) for b in binaries},
            )
        )
    return files


def download_release(tool: Tool, bin_dir: Path, work: Path, fetcher: Fetcher, say: Say) -> dict[str, str]:
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
            raise Unavailable(f"{release.name} has sha256 {got}, not the published {expected}", verdict="rejected")
        say(
            f"downloaded {release.name} ({(work / release.name).stat().st_size >> 20} MB in "
            f"{time.monotonic() - started:.0f}s); sha256 matches"
        )
        _extract(work / release.name, release.members, bin_dir)
        urls.update(dict.fromkeys(release.members, release.url))
    return urls


def _published_sha256(text: str, name: str) -> str:
    """The sha256 for `name` in a checksum file: `<hash>  <name>` lines (sha256sum's format, `*name`
    and `./name` too), or a file holding just the hash (dl.k8s.io's `<binary>.sha256`)."""
    words = text.split()
    if len(words) == 1 and re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
        return words[0].lower()
    for line in text.splitlines():
        parts = line.split()
        if (
            len(parts) >= 2
            and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0])
            and parts[-1].lstrip("*").removeprefix("./") == name
        ):
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
