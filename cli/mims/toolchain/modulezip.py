"""Data files of a tool that is not built (kwok's stages), taken from its Go module zip: from Go's
module cache when it holds the zip, else from the GOPROXY module proxies; the zip must match
tools.yaml's `module_sum` either way."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import zipfile
from pathlib import Path

from mims.toolchain.download import Fetcher
from mims.toolchain.recipes import Tool
from mims.toolchain.sources import Say, Unavailable

DEFAULT_GOPROXY = "https://proxy.golang.org,direct"


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
        raise Unavailable(
            f"its files come from {where}, which is not in the Go module cache "
            f"({cached.parent}), and nothing is downloaded" + _joined(reasons)
        )
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
