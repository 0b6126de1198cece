"""The simulated cluster's certificates: who each one names, where the API server may be reached,
and that private keys are readable by their owner only."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mims.cluster import pki


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cluster") / "pki"
    pki.generate(directory)
    return directory


def load(pki_dir: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((pki_dir / f"{name}.crt").read_bytes())


def usages(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_every_file_is_there_and_nothing_else(pki_dir):
    names = {"ca", "apiserver"} | {c.file for c in pki.CLIENTS}
    expected = {f"{n}.crt" for n in names} | {f"{n}.key" for n in names} | {"sa.key", "sa.pub"}
    assert {p.name for p in pki_dir.iterdir()} == expected
    assert not pki_dir.with_name("pki.partial").exists()


def test_private_keys_are_owner_only(pki_dir):
    assert stat.S_IMODE(pki_dir.stat().st_mode) == 0o700
    for key in pki_dir.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key.name


def test_ca_signs_every_certificate(pki_dir):
    ca = load(pki_dir, "ca")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for crt in pki_dir.glob("*.crt"):
        cert = load(pki_dir, crt.stem)
        cert.verify_directly_issued_by(ca)
        if crt.stem != "ca":
            assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_apiserver_names_cover_local_and_in_cluster_clients(pki_dir):
    cert = load(pki_dir, "apiserver")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.96.0.1"),
    }
    assert usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}


@pytest.mark.parametrize("identity", pki.CLIENTS, ids=lambda i: i.file)
def test_client_certificates_carry_user_and_groups(pki_dir, identity):
    cert = load(pki_dir, identity.file)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [identity.common_name]
    groups = tuple(a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    assert groups == identity.groups
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages(cert)


def test_kwok_also_serves_on_localhost(pki_dir):
    cert = load(pki_dir, "kwok")
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages(cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)


def test_only_the_cluster_components_are_administrators(pki_dir):
    admins = {c.file for c in pki.CLIENTS if "system:masters" in c.groups}
    assert admins == {"admin", "kwok"}


def test_service_account_keys_are_a_pair(pki_dir):
    private = serialization.load_pem_private_key((pki_dir / "sa.key").read_bytes(), password=None)
    public = serialization.load_pem_public_key((pki_dir / "sa.pub").read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()
    assert private.key_size == 2048


def test_write_private_narrows_an_existing_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text("old")
    path.chmod(0o644)
    pki.write_private(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
