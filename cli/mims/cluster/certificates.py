"""Making a local cluster's certificates and keys, as file name -> PEM bytes (mims.cluster.pki says
which and writes them): cryptography is imported here only, so commands that make no certificates do
not load it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650  # a local throw-away cluster: no rotation, so it must outlive its use


class Identity(Protocol):
    """Who a client certificate names (mims.cluster.pki.Identity)."""

    @property
    def file(self) -> str: ...
    @property
    def common_name(self) -> str: ...
    @property
    def groups(self) -> tuple[str, ...]: ...
    @property
    def serves(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None: ...


def make(
    clients: tuple[Identity, ...], apiserver_dns: tuple[str, ...], apiserver_ips: tuple[str, ...]
) -> dict[str, bytes]:
    """ca.crt/key, apiserver.crt/key, one .crt/.key per client, sa.key/sa.pub."""
    files: dict[str, bytes] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mims-sim-ca")])
    ca = (
        _builder(ca_name, ca_name, ca_key, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _pair(files, "ca", ca, ca_key)
    _issue(files, "apiserver", "kube-apiserver", (), ca, ca_key, server=(apiserver_dns, apiserver_ips), client=False)
    for identity in clients:
        _issue(
            files,
            identity.file,
            identity.common_name,
            identity.groups,
            ca,
            ca_key,
            server=identity.serves,
            client=True,
        )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files["sa.key"] = _private_pem(sa_key)
    files["sa.pub"] = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return files


def _issue(
    files: dict[str, bytes],
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
    builder = _builder(subject, ca.subject, key, ca=False).add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server:
        dns, ips = server
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            ),
            critical=False,
        )
    _pair(files, file, builder.sign(ca_key, hashes.SHA256()), key)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.CertificateBuilder:
    """A certificate for `subject`: a CA signs certificates (and CRLs), the others only sign data."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=ca,
                crl_sign=ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def _pair(files: dict[str, bytes], name: str, cert: x509.Certificate, key) -> None:
    files[f"{name}.crt"] = cert.public_bytes(serialization.Encoding.PEM)
    files[f"{name}.key"] = _private_pem(key)


def _private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
