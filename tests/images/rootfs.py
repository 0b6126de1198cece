"""Root filesystems for test images: the cached Debian base made by debootstrap, copies of it, and
commands run inside one with chroot.

Every mount a build needs (/proc, /dev for apt and maintainer scripts; what debootstrap mounts) is
made inside a private mount namespace of the command itself (`unshare --mount`), so it disappears
with that command even when the build is killed; `remove_tree` still unmounts anything found under
a folder before deleting it, so a leftover mount can never lead a delete into the host's /dev."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
VARIANT = "minbase"

# The environment of every command in a chroot: nothing leaks in from the host's.
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C",
    "DEBIAN_FRONTEND": "noninteractive",
}

Say = Callable[[str], None]


class BuildError(Exception):
    """A build step failed; the message says which and how to fix it."""


def require(program: str, package: str) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if not found:
        raise BuildError(f"{program} is not installed: apt-get install {package}")
    return found


def base_key() -> str:
    return hashlib.sha256(f"{SUITE} {VARIANT} {MIRROR}".encode()).hexdigest()[:12]


def debian_base(cache: Path, say: Say) -> Path:
    """The Debian base root filesystem (debootstrap, minbase variant), made once per cache.

    It is made under a `.partial` name and renamed when complete, so a killed run never leaves a
    half-made base that looks finished."""
    if os.geteuid() != 0:
        raise BuildError("building test images needs root (debootstrap, chroot)")
    path = cache / f"debian-{SUITE}-{base_key()}"
    if path.is_dir():
        return path
    debootstrap = require("debootstrap", "debootstrap")
    partial = path.with_name(path.name + ".partial")
    remove_tree(partial)
    cache.mkdir(parents=True, exist_ok=True)
    say(f"debootstrap --variant={VARIANT} {SUITE} (once per cache)")
    started = time.monotonic()
    try:
        _in_namespace([debootstrap, f"--variant={VARIANT}", SUITE, str(partial), MIRROR], what="debootstrap")
        for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial.rename(path)
    finally:
        remove_tree(partial)
    say(f"debootstrap: {time.monotonic() - started:.0f} s")
    return path


def copy_tree(source: Path, target: Path) -> None:
    """A full copy (owners, modes, hard links, device nodes) of one root filesystem to another."""
    target.mkdir(parents=True)
    subprocess.run(["cp", "-a", f"{source}/.", str(target)], check=True)


def chroot(root: Path, command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run `command` inside `root` as root, with /proc and the host's /dev mounted for it alone."""
    for folder in ("proc", "dev"):
        (root / folder).mkdir(exist_ok=True)
    script = 'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && exec chroot "$@"'
    _in_namespace(["sh", "-c", script, "sh", str(root), *command], what=what, env=env or CHROOT_ENV)


def _in_namespace(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    full = [require("unshare", "util-linux"), "--mount", "--propagation", "private", "--", *command]
    result = subprocess.run(full, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {result.returncode}):\n{tail}")


def inside(root: Path, path: str, follow_last: bool = True) -> Path:
    """Where the image's absolute `path` is under `root`, with symbolic links resolved as inside the
    image (an absolute target starts again at `root`, `..` stops at it). A plain `root / path`
    would follow Debian's /var/run -> /run into the build host's own /run."""
    if ".." in path.split("/"):
        raise BuildError(f"{path}: `..` is not allowed in image paths")
    resolved: list[str] = []
    pending = [p for p in path.split("/") if p]
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink() and (pending or follow_last):
            hops += 1
            if hops > 40:
                raise BuildError(f"{path}: too many symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p and p != "."] + pending
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below `folder` in this process's mount namespace, deepest first."""
    prefix = str(folder.resolve()) if folder.exists() else str(folder)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(folder: Path) -> None:
    """Unmount whatever is mounted below `folder`, then delete it."""
    for point in mounts_under(folder):
        subprocess.run(["umount", "--lazy", point], check=False)
    if mounts_under(folder):
        raise BuildError(f"{folder} still has mounts ({', '.join(mounts_under(folder))}); not deleting it")
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.is_symlink() or folder.exists():
        folder.unlink()
