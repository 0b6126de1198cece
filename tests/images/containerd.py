"""A throwaway containerd for tests: image archives are imported into it with `ctr` and containers
run from them, as on a real node.

Its root, state, socket, CNI folder and plugin folders are under one temporary folder, and its
containers' cgroups under a parent of its own. `stop()` puts the host back as it found it: the
daemon stopped, anything still mounted below the folder unmounted, the folder removed, and the
folders it had to create outside it (cgroup parents; /run/containerd/{fifo,s,runc}, where ctr puts
its fifos, shims their sockets and runc its state whatever the config says) removed when empty."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

from tests.images.rootfs import mounts_under, remove_tree, require

# restrict_oom_score_adj: these machines lack CAP_SYS_RESOURCE, so runc cannot lower a
# container's oom_score_adj below containerd's own (runc fails with `can't get final child's PID from
# pipe: EOF` otherwise; docs/cluster.md).
CONFIG = """version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{root}/containerd.sock"
[ttrpc]
  address = "{root}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{root}/cni"
"""

# Made outside the root, whatever the config says: ctr's fifos, shims' sockets, runc's state.
RUN_DIRS = (
    "/run/containerd",
    "/run/containerd/fifo",
    "/run/containerd/s",
    "/run/containerd/runc",
    "/run/containerd/runc/k8s.io",
)

# A shim leaves its socket here when it does not shut down cleanly (seen under load).
SHIM_SOCKETS = "/run/containerd/s"


class Containerd:
    """One containerd with everything under `folder`; use as a context manager."""

    namespace = "k8s.io"

    def __init__(self, folder: Path):
        self.folder = folder
        self.socket = folder / "containerd.sock"
        self.cgroup_parent = f"mims-test-images-{uuid.uuid4().hex[:8]}"
        self.process: subprocess.Popen | None = None
        self.existed: set[str] = set()

    def __enter__(self) -> Containerd:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        containerd = require("containerd", "containerd")
        require("ctr", "containerd")
        require("runc", "runc")
        self.existed = {d for d in RUN_DIRS if os.path.isdir(d)}
        self.sockets_before = set(os.listdir(SHIM_SOCKETS)) if os.path.isdir(SHIM_SOCKETS) else set()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.toml"
        config.write_text(CONFIG.format(root=self.folder))
        log = open(self.folder / "containerd.log", "wb")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen([containerd, "--config", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        path = self.folder / "containerd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def ctr(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        command = ["ctr", "--address", str(self.socket), "--namespace", self.namespace, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def import_image(self, archive: Path) -> None:
        self.ctr("image", "import", str(archive), timeout=300)

    def run(
        self,
        image: str,
        *command: str,
        user: str | None = None,
        env: dict[str, str] | None = None,
        mounts: list[str] | None = None,
        read_only: bool = False,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """Run one container of `image` to its end and return what it printed. `command` replaces
        the image's entrypoint and command, like a pod's `command`; `mounts` are ctr's --mount
        specifications (see `bind` and `tmpfs`). The default seccomp profile applies, as with
        RuntimeDefault. `timeout` (seconds) is when ctr is given up on, not the container: a
        command that waits for something must give up on its own before that.

        `user` ("uid:gid", like runAsUser and runAsGroup): this ctr (containerd 1.6) cannot set a
        container's user, so the container starts as root and `setpriv` (util-linux, in every
        Debian-based test image) switches to the user, with no supplementary groups and no
        capabilities left, before the command runs. That needs an image that starts as root (no
        USER); otherwise the image's USER applies and `user` must be left out (see `run_as`)."""
        return self._run(image, [], command, user, env, mounts, read_only, check, timeout)

    def run_as(
        self,
        image: str,
        user: str,
        *command: str,
        env: dict[str, str],
        workdir: str,
        mounts: list[str] | None = None,
        read_only: bool = False,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """`run` as `user` in an image with a USER of its own, as kubelet's runAsUser overrides it.
        This ctr always applies the image's USER, so the image is mounted (a writable snapshot:
        runc makes the mount points, then `read_only` remounts it) and run as a plain root
        filesystem, which has no image config: `env` (with PATH) and `workdir` must carry the
        image's own, e.g. from its recipe. The snapshot is removed afterwards."""
        target = self.folder / f"rootfs-{uuid.uuid4().hex[:10]}"
        target.mkdir()
        self.ctr("images", "mount", "--rw", image, str(target))
        try:
            options = ["--rootfs", "--cwd", workdir]
            return self._run(str(target), options, command, user, env, mounts, read_only, check, timeout)
        finally:
            self.ctr("images", "unmount", "--rm", str(target), check=False)
            target.rmdir()

    def _run(
        self,
        image: str,
        options: list[str],
        command: tuple[str, ...],
        user: str | None,
        env: dict[str, str] | None,
        mounts: list[str] | None,
        read_only: bool,
        check: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess:
        name = f"t-{uuid.uuid4().hex[:10]}"
        options = ["--rm", "--seccomp", "--cgroup", f"/{self.cgroup_parent}/{name}", *options]
        if user:
            uid, gid = user.split(":")
            command = ("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *command)
        if read_only:
            options.append("--read-only")
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        for mount in mounts or []:
            options += ["--mount", mount]
        return self.ctr("run", *options, image, name, *command, check=check, timeout=timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        remove_tree(self.folder)
        if os.path.isdir(SHIM_SOCKETS):
            for name in set(os.listdir(SHIM_SOCKETS)) - self.sockets_before:
                _remove_if_stale(os.path.join(SHIM_SOCKETS, name))
        for root in _cgroup_roots():
            parent = os.path.join(root, self.cgroup_parent)
            if os.path.isdir(parent):
                _rmdir(parent)
        for folder in reversed(RUN_DIRS):
            if folder not in self.existed:
                _rmdir(folder)
        assert not mounts_under(self.folder), f"mounts left under {self.folder}"


def bind(source: Path, target: str, read_only: bool = True) -> str:
    return f"type=bind,src={source},dst={target},options=rbind:{'ro' if read_only else 'rw'}"


def tmpfs(target: str) -> str:
    """An empty, writable folder, as an emptyDir."""
    return f"type=tmpfs,src=tmpfs,dst={target},options=nosuid:nodev:mode=1777"


def _cgroup_roots() -> list[str]:
    """Mount points of the cgroup hierarchies (v1 controllers and the v2 unified one)."""
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                roots.append(fields[4])
    return roots


def _remove_if_stale(path: str) -> None:
    """Delete a Unix socket nothing listens on any more; one in use stays."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


def _rmdir(folder: str) -> None:
    """Remove an empty folder; one that something else still uses stays."""
    try:
        os.rmdir(folder)
    except (FileNotFoundError, OSError):
        pass
