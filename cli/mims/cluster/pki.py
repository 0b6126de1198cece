"""A local cluster's certificates and keys: one CA signs the API server's serving certificate and
one client certificate per component (some also serve: kwok's and kubelet's APIs); RSA keys sign
service-account tokens. Certificates are ECDSA
P-256 because they are fast to make (a whole set in well under a second)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650  # a local throw-away cluster: no rotation, so it must outlive its use

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
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mims-sim-ca")])
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(staging, "ca", ca, ca_key)
    _issue(staging, "apiserver", "kube-apiserver", (), ca, ca_key, server=(APISERVER_DNS, apiserver_ips), client=False)
    for identity in clients:
        _issue(
            staging,
            identity.file,
            identity.common_name,
            identity.groups,
            ca,
            ca_key,
            server=identity.serves,
            client=True,
        )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(staging / "sa.key", _private_pem(sa_key))
    (staging / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    os.rename(staging, directory)


def write_private(path: Path, data: bytes) -> None:
    """Creates the file 0600 from the start, so a key is never readable by others, not even briefly;
    an existing file is narrowed to 0600 before it is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def _issue(
    directory: Path,
    file: str,
    common_name: str,
    groups: tuple[str, ...],
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server: tuple[tuple[str, ...], tuple[str, ...]] | None,
    client: bool,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        _builder(subject, ca.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if server:
        dns, ips = server
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            ),
            critical=False,
        )
    _write_pair(directory, file, builder.sign(ca_key, hashes.SHA256()), key)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
    )


def _write_pair(directory: Path, name: str, cert: x509.Certificate, key) -> None:
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(directory / f"{name}.key", _private_pem(key))


def _private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
