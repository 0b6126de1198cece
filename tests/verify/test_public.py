"""Requests to the public names go to the entrance's address: the Host header and, over TLS, the
server name are the public name, and the certificate is checked for it."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mims.verify.public import PublicClient, split_address
from tests.verify.conftest import https_server

DOMAIN = "data.probeville.example"


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"host={self.headers['Host']} path={self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serving() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_plain_http_goes_to_the_address_with_the_public_host_name():
    with serving() as port:
        answer = PublicClient(DOMAIN, "http", address=f"127.0.0.1:{port}").request("GET", "api", "/context/ats.jsonld")
    assert answer.status == 200 and answer.body == f"host=api.{DOMAIN} path=/context/ats.jsonld".encode()


def test_tls_asks_for_the_public_name_and_checks_the_certificate_for_it(tmp_path):
    with https_server(tmp_path, [f"api.{DOMAIN}"], Echo) as (port, ca_file, asked):
        client = PublicClient(DOMAIN, "https", address=f"127.0.0.1:{port}", ca_file=ca_file)
        answer = client.request("GET", "api", "/ngsi-ld/v1/types")
        assert answer.status == 200 and answer.body.startswith(f"host=api.{DOMAIN}".encode())
        assert asked == [f"api.{DOMAIN}"]
        assert client.last_certificate and client.last_certificate["notAfter"]
        with pytest.raises(ssl.SSLCertVerificationError):
            client.request("GET", "data", "/")  # the certificate does not cover data.<domain>


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.0.2.2", ("192.0.2.2", 443)),
        ("192.0.2.2:8443", ("192.0.2.2", 8443)),
        ("[fd00::2]:8443", ("fd00::2", 8443)),
        ("fd00::2", ("fd00::2", 443)),
        ("lb.example.org", ("lb.example.org", 443)),
    ],
)
def test_an_address_may_carry_a_port(address, expected):
    assert split_address(address, 443) == expected
