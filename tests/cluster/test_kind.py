"""kind clusters, driven through stand-ins for the `kind` and `docker` binaries."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mims.blueprint.model import Cluster
from mims.cluster import KindCluster, resolve
from mims.errors import ClusterError
from tests.conftest import Said

# Keeps its clusters in $FAKE_KIND_STATE, one name a line; logs each call's provider to $FAKE_KIND_LOG.
FAKE_KIND = r"""#!/bin/sh
PATH=/usr/bin:/bin  # the test's PATH holds only the stand-ins
state="$FAKE_KIND_STATE"; touch "$state"
echo "${KIND_EXPERIMENTAL_PROVIDER:-docker} $*" >> "$FAKE_KIND_LOG"
case "$1 $2" in
  "get clusters") cat "$state" ;;
  "create cluster") echo "Creating cluster \"$4\" ..." >&2; echo "$4" >> "$state" ;;
  "get kubeconfig") echo "apiVersion: v1"; echo "current-context: kind-$4" ;;
  "get nodes") echo "$4-control-plane" ;;
  "delete cluster") grep -v -x "$4" "$state" > "$state.new"; mv "$state.new" "$state" ;;
  "fail now") echo "ERROR: failed to create cluster: boom" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def fake_bin(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_KIND_STATE", str(tmp_path / "clusters.txt"))
    monkeypatch.setenv("FAKE_KIND_LOG", str(tmp_path / "calls.txt"))
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    return bin_dir


def install(bin_dir: Path, name: str, body: str = "#!/bin/sh\nexit 0\n") -> None:
    (bin_dir / name).write_text(body)
    (bin_dir / name).chmod(0o755)


def test_no_container_runtime(fake_bin):
    install(fake_bin, "kind", FAKE_KIND)
    with pytest.raises(ClusterError, match=r"^kind needs Docker or Podman; neither is on PATH$"):
        KindCluster().exists()


def test_no_kind_binary(fake_bin):
    install(fake_bin, "docker")
    with pytest.raises(ClusterError, match="kind is not on PATH"):
        KindCluster().exists()


def test_podman_alone_is_used_through_kind_provider(fake_bin, tmp_path):
    install(fake_bin, "podman")
    install(fake_bin, "kind", FAKE_KIND)
    assert KindCluster().exists() is False
    assert (tmp_path / "calls.txt").read_text() == "podman get clusters\n"


def test_create_status_delete(fake_bin, home, tmp_path):
    install(fake_bin, "docker")
    install(fake_bin, "kind", FAKE_KIND)
    cluster = KindCluster("demo")
    said = Said()
    status = cluster.create(progress=said)
    assert status.exists and status.nodes == 1 and status.context == "kind-demo"
    assert said.lines[-1] == 'Creating cluster "demo" ...'
    assert cluster.kubeconfig == home / "clusters" / "kind-demo" / "kubeconfig"
    assert "current-context: kind-demo" in cluster.kubeconfig.read_text()
    assert stat.S_IMODE(cluster.kubeconfig.stat().st_mode) == 0o600
    cluster.create()  # exists: not created twice
    assert (tmp_path / "clusters.txt").read_text().split() == ["demo"]
    assert cluster.delete() is True
    assert not cluster.kubeconfig.parent.exists() and not cluster.status().exists
    assert cluster.delete() is False


def test_resolve_connects_to_an_existing_kind_cluster(fake_bin, home):
    install(fake_bin, "docker")
    install(fake_bin, "kind", FAKE_KIND)
    with pytest.raises(ClusterError, match="no kind cluster `mims`; run `mims cluster create --kind`"):
        resolve(Cluster(target="kind"))
    KindCluster().create()
    connection = resolve(Cluster(target="kind"))
    assert (connection.kind, connection.context) == ("kind", "kind-mims")
    assert connection.kubeconfig.is_file()


def test_kind_failure_shows_its_output(fake_bin):
    install(fake_bin, "docker")
    install(fake_bin, "kind", FAKE_KIND)
    with pytest.raises(ClusterError, match=r"exited with status 1\n  ERROR: failed to create cluster: boom"):
        KindCluster()._run(["fail", "now"])
