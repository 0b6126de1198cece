"""The control plane every local cluster runs as host processes: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, their command lines, the encryption of Secrets at rest,
and the few API calls starting a cluster needs."""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mims.cluster import pki
from mims.errors import ClusterError
from mims.toolchain import InstalledTool

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_CIDR = "10.96.0.0/16"
ENCRYPTION_FILE = "encryption.yaml"


@dataclass(frozen=True)
class ControlPlane:
    """Where the control plane listens and what it trusts. `address` is the API server's bind and
    advertise address: 127.0.0.1 for a simulated cluster (nothing in a pod dials it), the node's own
    address on a real node, where pods reach it through the `kubernetes` Service."""

    dir: Path
    pki: Path
    address: str
    api_port: int
    etcd_client: int
    etcd_peer: int
    kubelets: bool = False  # real kubelets: the API server dials them for logs and exec

    @property
    def api_url(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    def commands(self, tools: dict[str, InstalledTool], kubeconfigs: Path) -> dict[str, list]:
        p, k8s = self.pki, tools["kubernetes"]
        etcd_url, peer_url = f"http://127.0.0.1:{self.etcd_client}", f"http://127.0.0.1:{self.etcd_peer}"
        cm, sched = kubeconfigs / "controller-manager.kubeconfig", kubeconfigs / "scheduler.kubeconfig"
        apiserver = [
            k8s["kube-apiserver"],
            f"--etcd-servers={etcd_url}",
            f"--bind-address={self.address}",
            f"--advertise-address={self.address}",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--encryption-provider-config={p / ENCRYPTION_FILE}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
            "--v=1",
        ]
        if self.kubelets:
            apiserver += [
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={p / 'ca.crt'}",
                # The node's name (`<cluster>-node`) is in no DNS; its address is in its status.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ]
        else:
            # 127.0.0.1 may not be an Endpoints address, and nothing dials the `kubernetes` Service;
            # without this the apiserver logs an error every few seconds.
            apiserver.append("--endpoint-reconciler-type=none")
        return {
            "etcd": [
                tools["etcd"]["etcd"],
                "--name=node0",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=node0={peer_url}",
                "--auto-compaction-retention=1",
                "--quota-backend-bytes=2147483648",
                "--unsafe-no-fsync=true",  # throw-away data; fsync stalls on VM disks slow every write
                "--log-level=warn",
            ],
            "kube-apiserver": apiserver,
            "kube-controller-manager": [
                k8s["kube-controller-manager"],
                f"--kubeconfig={cm}",
                f"--authentication-kubeconfig={cm}",
                f"--authorization-kubeconfig={cm}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",  # one instance; saves the lease wait on restart
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*,-nodeipam",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--v=1",
            ],
            "kube-scheduler": [
                k8s["kube-scheduler"],
                f"--kubeconfig={sched}",
                f"--authentication-kubeconfig={sched}",
                f"--authorization-kubeconfig={sched}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--v=1",
            ],
        }


def ensure_encryption_config(pki_dir: Path) -> None:
    """Secrets are encrypted in etcd with a key made here (secretbox: XSalsa20-Poly1305), kept 0600
    beside the cluster's other keys; `identity` after it still reads Secrets written before there
    was a key."""
    path = pki_dir / ENCRYPTION_FILE
    if path.exists():
        return
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [{"secretbox": {"keys": [{"name": "key1", "secret": key}]}}, {"identity": {}}],
            }
        ],
    }
    partial = path.with_suffix(".partial")
    pki.write_private(partial, yaml.safe_dump(config, sort_keys=False).encode())
    os.replace(partial, path)


def write_kubeconfig(path: Path, pki_dir: Path, context: str, server: str, user: str) -> None:
    """Certificates inline, so the admin kubeconfig still works when copied elsewhere."""

    def data(file: str) -> str:
        return base64.b64encode((pki_dir / file).read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": data("ca.crt")}}],
        "users": [
            {
                "name": f"{context}-{user}",
                "user": {"client-certificate-data": data(f"{user}.crt"), "client-key-data": data(f"{user}.key")},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-{user}"}}],
    }
    pki.write_private(path, yaml.safe_dump(doc, sort_keys=False).encode())


class Api:
    """The few API calls starting a cluster needs, with the certificate of `user` (the admin's by
    default); the official client would add half a second of import to every `mims cluster` command."""

    def __init__(self, url: str, pki_dir: Path, user: str = "admin") -> None:
        self.url = url
        self.pki_dir = pki_dir
        self.user = user
        self._context: ssl.SSLContext | None = None

    def ready(self) -> bool:
        return bool(self.url) and self.get("/readyz", timeout=3)[0] == 200

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        return self.call("GET", path, None, timeout)

    def ensure(self, collection: str, obj: dict) -> None:
        """Creates `obj` unless it exists (a restarted cluster keeps its objects). Looked up first: a
        Service asking for a ClusterIP its existing self holds is refused with 422, not 409."""
        if self.get(f"{collection}/{obj['metadata']['name']}")[0] == 200:
            return
        code, body = self.call("POST", collection, obj, 10)
        if code not in (201, 409):
            message = body.get("message") if isinstance(body, dict) else body
            raise ClusterError(f"creating {obj['kind']} {obj['metadata']['name']} failed (HTTP {code}): {message}")

    def rewrite_secrets(self) -> int:
        """Writes every Secret back unchanged, so the API server stores it encrypted; returns how many."""
        code, body = self.get("/api/v1/secrets", timeout=30)
        if code != 200 or not isinstance(body, dict):
            raise ClusterError(f"listing Secrets to encrypt them failed (HTTP {code})")
        for item in body.get("items", []):
            meta = item["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/secrets/{meta['name']}"
            code, answer = self.call("PUT", path, {"apiVersion": "v1", "kind": "Secret", **item}, 10)
            if code not in (200, 404, 409):  # deleted or changed meanwhile: written anew by then
                message = answer.get("message") if isinstance(answer, dict) else answer
                raise ClusterError(
                    f"encrypting Secret {meta['namespace']}/{meta['name']} failed (HTTP {code}): {message}"
                )
        return len(body.get("items", []))

    def call(
        self, method: str, path: str, obj: dict | None, timeout: float, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
            self._context.load_cert_chain(
                str(self.pki_dir / f"{self.user}.crt"), str(self.pki_dir / f"{self.user}.key")
            )
        data = None if obj is None else json.dumps(obj).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": content_type} if data else {}
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (OSError, http.client.HTTPException):
            return 0, None  # not listening yet, or closed the connection while starting


def _decode(raw: bytes) -> Any:
    return json.loads(raw) if raw[:1] == b"{" else raw.decode(errors="replace")


def condition(obj: Any, kind: str) -> bool:
    """Whether API object `obj` has condition `kind` True (False for an error answer, whose `status`
    is a string)."""
    status = obj.get("status") if isinstance(obj, dict) else None
    conditions = status.get("conditions") or [] if isinstance(status, dict) else []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)
