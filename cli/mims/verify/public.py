"""Requests to the platform's public names (`https://<host>.<domain>`), sent to the address the
platform's entrance answers on, so a city can verify before its DNS records exist (and the real-node
tests can verify with no DNS at all): the connection goes to that address while the Host header and
TLS's server name are the public name, as a browser would send them."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from email.message import Message
from typing import Any

TIMEOUT = 15.0


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def media_type(self) -> str:
        """The Content-Type without its parameters (`; charset=...`)."""
        return self.header("Content-Type").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    def brief(self) -> str:
        """For failure messages: the status and the start of the body."""
        text = self.body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
        return f"HTTP {self.status}" + (f": {text}" if text else "")


class _NamedTLSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to `address` that asks for, and checks, the certificate of `server_name`."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address, port, context=context, timeout=timeout)
        self.server_name = server_name
        self.tls_context = context
        self.peer_certificate: dict | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.server_name)
        self.peer_certificate = self.sock.getpeercert()


class PublicClient:
    """`scheme` is the blueprint's (http with tls.mode none); `address` (`host` or `host:port`) where
    to connect instead of what DNS answers for each name (None: ask DNS); `ca_file` extra trust for a
    private CA."""

    def __init__(self, domain: str, scheme: str, address: str | None = None, ca_file: str | None = None):
        self.domain = domain
        self.scheme = scheme
        self.address = address
        self.ca_file = ca_file
        self.tls = ssl.create_default_context(cafile=ca_file) if scheme == "https" else None
        self.last_certificate: dict | None = None

    def name(self, host: str) -> str:
        return f"{host}.{self.domain}"

    def url(self, host: str, path: str) -> str:
        return f"{self.scheme}://{self.name(host)}{path}"

    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        body: bytes | dict | list | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> Response:
        """One request; a dict or list body is sent as JSON unless headers name another type."""
        headers = dict(headers or {})
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        name = self.name(host)
        connection = self._connection(name, timeout)
        try:
            connection.request(method, path, body=body, headers={"Host": name, **headers})
            answer = connection.getresponse()
            response = Response(answer.status, answer.headers, answer.read())
            if isinstance(connection, _NamedTLSConnection):
                self.last_certificate = connection.peer_certificate
            return response
        finally:
            connection.close()

    def _connection(self, name: str, timeout: float) -> http.client.HTTPConnection:
        host, port = split_address(self.address or name, 80 if self.tls is None else 443)
        if self.tls is None:
            return http.client.HTTPConnection(host, port, timeout=timeout)
        return _NamedTLSConnection(host, port, name, self.tls, timeout)


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[ipv6]` or `[ipv6]:port` (a bare IPv6 address has no port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, colon, port = address.partition(":")
    if colon and ":" not in port:
        return host, int(port)
    return address, default_port
