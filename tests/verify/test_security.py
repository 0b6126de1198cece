"""MIM6's TLS probe against a local HTTPS server standing in for the entrance: a certificate the
client trusts for every public name and HSTS pass; an untrusted certificate or a missing HSTS header
fail, naming the host."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from mims.blueprint import load_blueprint
from mims.verify.platform import Platform
from mims.verify.probe import run_probes
from mims.verify.probes import security
from mims.verify.public import PublicClient
from mims.verify.report import Status
from tests.verify.conftest import https_server

TLS = "TLS: valid certificate, not expiring, HSTS"


def handler(hsts: bool) -> type[BaseHTTPRequestHandler]:
    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            if hsts:
                self.send_header("Strict-Transport-Security", "max-age=31536000")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Gateway


@pytest.fixture
def tls_check(write_blueprint, renderer, tmp_path):
    """Runs the TLS probe of the small city with `tls.mode: secret` against the local entrance."""
    rendering = renderer.render(load_blueprint(write_blueprint({"tls": {"mode": "secret", "secret_name": "city-tls"}})))
    domain = rendering.loaded.blueprint.domain
    names = sorted({f"{e.host}.{domain}" for e in rendering.endpoints.values() if e.public and e.protocol == "http"})

    def run(hsts: bool = True, trusted: bool = True):
        with https_server(tmp_path, names, handler(hsts)) as (port, ca_file, _):
            public = PublicClient(domain, "https", address=f"127.0.0.1:{port}", ca_file=ca_file if trusted else None)
            platform = Platform(rendering, api=None, public=public, run_id="0a1b2c")  # type: ignore[arg-type]
            probes = [p for p in security.probes(platform) if p.name == TLS]
            [result] = run_probes(probes)
            return result

    return run


def test_a_trusted_certificate_for_every_public_name_with_hsts_passes(tls_check):
    result = tls_check()
    assert result.status is Status.PASS, result.message


def test_a_certificate_from_an_unknown_ca_fails(tls_check):
    result = tls_check(trusted=False)
    assert result.status is Status.FAIL and "certificate not trusted" in result.message


def test_answers_without_hsts_fail(tls_check):
    result = tls_check(hsts=False)
    assert result.status is Status.FAIL and "no Strict-Transport-Security header" in result.message
