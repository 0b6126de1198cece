"""Build a test image from its recipe into a cached OCI archive.

The archive is named `<recipe>-<hash>.tar` in the cache (`$MIMS_CACHE_DIR/test-images`, by default
~/.cache/mims/test-images); the hash covers the recipe, the files it ships and this builder's code,
so a change to any of them builds anew and an unchanged recipe costs nothing. Downloaded files are
kept in its `downloads/` folder, named by their digest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

from mims import paths
from tests.images import oci
from tests.images.recipe import (
    FILES,
    HERE,
    AptStep,
    DirectoriesStep,
    Download,
    DownloadStep,
    FilesStep,
    GoInstall,
    GoInstallStep,
    GoModuleFileStep,
    LinksStep,
    Recipe,
    RunStep,
    Step,
    UsersStep,
    load_recipe,
    shipped_files,
)
from tests.images.rootfs import BuildError, Say, base_key, chroot, copy_tree, debian_base, inside, remove_tree, require

# The builder's own code: a change to any of these files changes every image's hash.
BUILDER_CODE = ("build.py", "oci.py", "recipe.py", "rootfs.py")

# Stops maintainer scripts from starting services in the chroot (Debian policy, invoke-rc.d).
POLICY_RC_D = "#!/bin/sh\nexit 101\n"

# Left behind by the build; no part of an image.
REMOVED = (
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "etc/resolv.conf",
    "etc/hostname",
    "usr/sbin/policy-rc.d",
)
# Emptied, kept: the runtime mounts /dev, /proc and /sys; apt keeps its folders.
EMPTIED = ("dev", "proc", "sys", "tmp", "var/tmp", "var/lib/apt/lists", "var/cache/apt", "var/log/apt")


def cache_dir() -> Path:
    return paths.cache_dir() / "test-images"


def recipe_hash(name: str, recipe: Recipe) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"name": name, "recipe": recipe.model_dump(mode="json")}, sort_keys=True).encode())
    for f in sorted(shipped_files(recipe), key=lambda f: f.source):
        digest.update(f.source.encode() + b"\0" + (FILES / f.source).read_bytes())
    for code in BUILDER_CODE:
        digest.update((HERE / code).read_bytes())
    if recipe.base == "debian" or recipe.build:
        digest.update(base_key().encode())
    return digest.hexdigest()[:12]


def archive_path(name: str, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / f"{name}-{recipe_hash(name, load_recipe(name))}.tar"


def build(name: str, cache: Path | None = None, say: Say | None = None) -> Path:
    """The OCI archive of recipe `name`, built unless the cache has it. Needs root."""
    say = say or _stderr
    cache = cache or cache_dir()
    recipe = load_recipe(name)
    out = cache / f"{name}-{recipe_hash(name, recipe)}.tar"
    if out.is_file():
        return out
    started = time.monotonic()
    base = debian_base(cache, say) if recipe.base == "debian" or recipe.build else None
    (cache / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cache / "work"))
    try:
        image = work / "image"
        if recipe.base == "debian":
            assert base is not None
            copy_tree(base, image)
        else:
            image.mkdir()
        if recipe.build:
            assert base is not None
            stage = work / "build"
            copy_tree(base, stage)
            Chroot(stage, "build stage", cache / "downloads").run_steps(recipe.build.steps, say)
            for output in recipe.build.outputs:
                target = inside(image, output.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = inside(stage, output.source)
                if source.is_dir():
                    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
                else:
                    shutil.copy2(source, target)
        Chroot(image, name, cache / "downloads").run_steps(recipe.steps, say)
        _finish(image)
        c = recipe.config
        config = oci.ImageConfig(c.user, c.entrypoint, c.cmd, c.env, c.workdir, c.ports, c.volumes, c.stop_signal)
        oci.write_archive(image, config, recipe.image, out, history=f"tests/images/recipes/{name}.yaml")
    finally:
        remove_tree(work)
    for older in cache.glob(f"{name}-*.tar"):
        if older != out and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{12}}\.tar", older.name):
            older.unlink()
    say(f"{name}: built {recipe.image} in {time.monotonic() - started:.0f} s, {out.stat().st_size / 2**20:.1f} MiB")
    return out


class Chroot:
    """One root filesystem being built: runs the recipe's steps in it, in order."""

    def __init__(self, root: Path, what: str, downloads: Path):
        self.root, self.what, self.downloads = root, what, downloads
        self.apt_updated = False
        if (root / "usr/bin/apt-get").exists():
            policy = inside(root, "/usr/sbin/policy-rc.d")
            policy.write_text(POLICY_RC_D)
            policy.chmod(0o755)
            shutil.copyfile("/etc/resolv.conf", inside(root, "/etc/resolv.conf"))

    def run_steps(self, steps: list[Step], say: Say) -> None:
        for number, step in enumerate(steps, 1):
            kind = next(iter(type(step).model_fields))
            started = time.monotonic()
            self.step(step)
            say(f"{self.what}: step {number} ({kind}) {time.monotonic() - started:.0f} s")

    def step(self, step: Step) -> None:
        if isinstance(step, UsersStep):
            for user in step.users:
                group = user.group or user.name
                self.sh(f"getent group {group} >/dev/null || groupadd --system --gid {user.gid} {group}")
                self.chroot(
                    ["useradd", "--system", "--uid", str(user.uid), "--gid", str(user.gid), "--no-create-home"]
                    + ["--home-dir", user.home, "--shell", user.shell, user.name]
                )
        elif isinstance(step, AptStep):
            if not self.apt_updated:
                self.chroot(["apt-get", "update", "-qq"])
                self.apt_updated = True
            self.chroot(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *step.apt])
        elif isinstance(step, FilesStep):
            for f in step.files:
                target = inside(self.root, f.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(FILES / f.source, target)
                _own(target, f.mode, f.owner)
        elif isinstance(step, DirectoriesStep):
            for d in step.directories:
                target = inside(self.root, d.path)
                target.mkdir(parents=True, exist_ok=True)
                _own(target, d.mode, d.owner)
        elif isinstance(step, LinksStep):
            for link, target in step.links.items():
                path = inside(self.root, link, follow_last=False)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.unlink(missing_ok=True)
                path.symlink_to(target)
        elif isinstance(step, RunStep):
            if isinstance(step.run, str):
                self.sh(step.run)
            else:
                self.chroot(step.run)
        elif isinstance(step, GoModuleFileStep):
            source = _go_module_dir(step.go_module_file.module, step.go_module_file.version) / step.go_module_file.file
            target = inside(self.root, step.go_module_file.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        elif isinstance(step, GoInstallStep):
            target = inside(self.root, step.go_install.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            _go_install(step.go_install, target)
        elif isinstance(step, DownloadStep):
            _download(step.download, self.root, self.downloads)

    def sh(self, script: str) -> None:
        self.chroot(["/bin/sh", "-euc", script])

    def chroot(self, command: list[str]) -> None:
        chroot(self.root, command, what=f"{self.what}: {' '.join(command)[:200]}")


def _own(path: Path, mode: str, owner: str) -> None:
    uid, gid = (int(x) for x in owner.split(":"))
    os.chown(path, uid, gid, follow_symlinks=False)
    path.chmod(int(mode, 8))


def _go_module_dir(module: str, version: str) -> Path:
    """The module's folder in the Go module cache, downloaded with `go mod download` when missing."""
    go = require("go", "golang (or the Go toolchain mims builds with)")
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        cwd=tempfile.gettempdir(),
        env={**os.environ, "GO111MODULE": "on", "GOFLAGS": "-mod=mod"},
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or not info.get("Dir"):
        raise BuildError(f"go mod download {module}@{version} failed: {info.get('Error') or result.stderr.strip()}")
    return Path(info["Dir"])


def _go_install(spec: GoInstall, target: Path) -> None:
    """`go install package@version` without cgo into a scratch GOBIN; the binary becomes `target`."""
    go = require("go", "golang (or the Go toolchain mims builds with)")
    with tempfile.TemporaryDirectory() as gobin:
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0", "GO111MODULE": "on", "GOFLAGS": "-mod=mod"}
        command = [go, "install", "-trimpath", f"-ldflags={spec.ldflags}", f"-tags={','.join(spec.tags)}"]
        command.append(f"{spec.package}@{spec.version}")
        result = subprocess.run(command, cwd=gobin, env=env, capture_output=True, text=True, check=False)
        built = list(Path(gobin).iterdir())
        if result.returncode != 0 or len(built) != 1:
            raise BuildError(f"{' '.join(command)} failed:\n{result.stderr.strip()[-3000:]}")
        shutil.copy2(built[0], target)
        target.chmod(0o755)


def _download(spec: Download, root: Path, downloads: Path) -> None:
    """`spec.url`, fetched once into `downloads` and checked against its digest, copied or unpacked
    to `spec.path` in `root`."""
    algorithm, expected = spec.digest.split(":")
    cached = downloads / f"{algorithm}-{expected}"
    if not cached.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        digest = hashlib.new(algorithm)
        try:
            with urllib.request.urlopen(spec.url, timeout=60) as response, open(partial, "wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BuildError(f"downloading {spec.url} failed: {exc}") from None
        if digest.hexdigest() != expected:
            partial.unlink()
            raise BuildError(
                f"{spec.url} has {algorithm} {digest.hexdigest()}, the recipe's digest is {expected}: "
                f"check the registry's published .{algorithm} and fix the recipe's `digest` or `url`"
            )
        partial.rename(cached)
    target = inside(root, spec.path)
    if target.exists():
        raise BuildError(f"{spec.path} is already in the image; download to a path that does not exist yet")
    target.parent.mkdir(parents=True, exist_ok=True)
    if spec.unpack:
        _unpack(cached, target, spec.url, scratch_in=root.parent)
    else:
        shutil.copyfile(cached, target)


def _unpack(archive: Path, target: Path, what: str, scratch_in: Path) -> None:
    """Unpack a zip or tar archive with its files' modes and move its one top folder to `target`
    (an upstream Dockerfile's `ADD` of a release, then `mv /tmp/x/x-* /opt/x`)."""
    scratch = Path(tempfile.mkdtemp(prefix="unpack-", dir=scratch_in))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    mode = info.external_attr >> 16
                    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                        raise BuildError(f"{what}: {info.filename} is neither a file nor a folder; not unpacked")
                    extracted = Path(z.extract(info, scratch))
                    if mode & 0o7777:
                        extracted.chmod(mode & 0o7777)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter="tar")
        top = list(scratch.iterdir())
        if len(top) != 1 or not top[0].is_dir():
            raise BuildError(f"{what}: unpack expects one top folder, found {sorted(p.name for p in top)}")
        top[0].rename(target)
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        raise BuildError(f"{what}: cannot unpack: {exc}") from None
    finally:
        remove_tree(scratch)


def _finish(root: Path) -> None:
    """Remove what building left behind."""
    for leftover in REMOVED:
        remove_tree(inside(root, leftover, follow_last=False))
    for folder in EMPTIED:
        path = inside(root, folder)
        if path.is_dir():
            for child in path.iterdir():
                remove_tree(child)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
