"""kind clusters (Kubernetes in Docker or Podman containers): real kubelets and containers, for
trying the platform with pods that actually run. mims drives the `kind` binary and keeps the
cluster's kubeconfig in `<clusters_dir>/kind-<name>/kubeconfig`, leaving ~/.kube/config alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mims import paths
from mims.cluster import pki
from mims.errors import ClusterError
from mims.progress import SILENT, Progress

CREATE_WAIT = "5m"  # until the control plane is Ready; pulling the node image comes on top
TAIL_LINES = 15


@dataclass(frozen=True)
class KindStatus:
    name: str
    exists: bool
    nodes: int
    kubeconfig: Path
    context: str

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "exists": self.exists,
            "nodes": self.nodes,
            "kubeconfig": str(self.kubeconfig),
            "context": self.context,
        }


class KindCluster:
    def __init__(self, name: str = "mims", root: Path | None = None) -> None:
        self.name = name
        self.context = f"kind-{name}"  # the context name kind writes
        self.kubeconfig = (root or paths.clusters_dir()) / f"kind-{name}" / "kubeconfig"

    def exists(self) -> bool:
        return self.name in self._run(["get", "clusters"]).split()

    def create(self, progress: Progress = SILENT) -> KindStatus:
        """Creates the cluster unless it exists; either way writes its kubeconfig."""
        if self.exists():
            progress.say(f"kind cluster `{self.name}` already exists")
        else:
            progress.say(f"creating kind cluster `{self.name}` (the first run pulls the node image)")
            self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            self._run(
                ["create", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig), "--wait", CREATE_WAIT],
                progress,
            )
        self.write_kubeconfig()
        return self.status()

    def write_kubeconfig(self) -> None:
        """From kind itself: the API server's port changes when the container restarts."""
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        pki.write_private(self.kubeconfig, self._run(["get", "kubeconfig", "--name", self.name]).encode())

    def delete(self) -> bool:
        """True when there was a cluster to delete."""
        existed = self.exists()
        if existed:
            self._run(["delete", "cluster", "--name", self.name])
        shutil.rmtree(self.kubeconfig.parent, ignore_errors=True)
        return existed

    def status(self) -> KindStatus:
        exists = self.exists()
        nodes = len(self._run(["get", "nodes", "--name", self.name]).split()) if exists else 0
        return KindStatus(self.name, exists, nodes, self.kubeconfig, self.context)

    def _run(self, args: list[str], progress: Progress | None = None) -> str:
        """Runs `kind ARGS` and returns its stdout. With `progress`, output lines are relayed as they come
        (kind reports its progress on stderr) and merged into what is returned."""
        kind, env = _kind()
        cmd = [kind, *args]
        if progress is None:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace", check=False)
            output, lines = done.stdout, done.stderr.splitlines()
            code = done.returncode
        else:
            process = subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
            )
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line.rstrip())
                if line.strip():
                    progress.say(line.strip())
            output, code = "\n".join(lines), process.wait()
        if code != 0:
            tail = "".join(f"\n  {line}" for line in lines[-TAIL_LINES:])
            raise ClusterError(f"`{' '.join(cmd)}` exited with status {code}{tail}")
        return output


def _kind() -> tuple[str, dict[str, str]]:
    """The kind binary and its environment; Podman is used when Docker is not there."""
    env = dict(os.environ)
    if not shutil.which("docker"):
        if not shutil.which("podman"):
            raise ClusterError("kind needs Docker or Podman; neither is on PATH")
        env.setdefault("KIND_EXPERIMENTAL_PROVIDER", "podman")
    kind = shutil.which("kind")
    if not kind:
        raise ClusterError(
            "kind is not on PATH; install it (https://kind.sigs.k8s.io) or use `mims cluster create --sim`"
        )
    return kind, env
