"""A local cluster's certificates and keys: one CA signs the API server's serving certificate and
one client certificate per component (some also serve: kwok's and kubelet's APIs); RSA keys sign
service-account tokens. Certificates are ECDSA
P-256 because they are fast to make (a whole set in well under a second)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# The names a pod (or a client on this machine) may use for the API server; 10.96.0.1 is the
# first address of the service range, the ClusterIP of the `kubernetes` Service.
APISERVER_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
APISERVER_IPS = ("127.0.0.1", "10.96.0.1")


@dataclass(frozen=True)
class Identity:
    """A client certificate: its CN is the Kubernetes user name, its O entries the groups."""

    file: str
    common_name: str
    groups: tuple[str, ...] = ()
    serves: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # (DNS names, IPs) it also serves on


# Default RBAC binds system:kube-controller-manager and system:kube-scheduler; mims itself and kwok
# act as cluster administrators (system:masters).
CLIENTS = (
    Identity("admin", "mims-admin", ("system:masters",)),
    Identity("controller-manager", "system:kube-controller-manager"),
    Identity("scheduler", "system:kube-scheduler"),
    Identity("kwok", "kwok-controller", ("system:masters",), serves=(("localhost",), ("127.0.0.1",))),
)


def generate(
    directory: Path, clients: tuple[Identity, ...] = CLIENTS, apiserver_ips: tuple[str, ...] = APISERVER_IPS
) -> None:
    """Writes ca.crt/key, apiserver.crt/key (for APISERVER_DNS and `apiserver_ips`), one .crt/.key per
    client and sa.key/sa.pub. Files appear together: they are written to a sibling folder that is
    renamed into place."""
    from mims.cluster import certificates

    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    for name, data in certificates.make(clients, APISERVER_DNS, apiserver_ips).items():
        if name.endswith(".key"):
            write_private(staging / name, data)
        else:
            (staging / name).write_bytes(data)
    os.rename(staging, directory)


def write_private(path: Path, data: bytes) -> None:
    """Creates the file 0600 from the start, so a key is never readable by others, not even briefly;
    an existing file is narrowed to 0600 before it is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
