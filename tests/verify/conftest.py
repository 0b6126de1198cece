"""Probes against recorded HTTP exchanges (tests/fixtures/verify/*.yaml): a Platform whose public
client answers each request with the next recorded response, after checking that the request is the
recorded one."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from mims.blueprint import load_blueprint
from mims.charts.render import Renderer
from mims.cluster import certificates
from mims.verify.platform import VERIFY_CLIENT, Platform
from mims.verify.probe import run_probes
from mims.verify.public import PublicClient, Response
from mims.verify.report import Result
from tests.conftest import FIXTURES

BLUEPRINT = FIXTURES / "verify" / "blueprint.yaml"
RUN_ID = "0a1b2c"
TOKEN = "probe-token"


def load_exchanges(name: str, **replaced: dict) -> list[dict]:
    """The exchanges of FIXTURES/verify/<name>.yaml; `replaced` swaps the response of the exchange with
    that id (a broken broker)."""
    exchanges = yaml.safe_load((FIXTURES / "verify" / f"{name}.yaml").read_text())["exchanges"]
    for exchange in exchanges:
        if exchange["id"] in replaced:
            exchange["response"] = replaced.pop(exchange["id"])
    assert not replaced, f"no exchange with id {sorted(replaced)}"
    return exchanges


class Replay(PublicClient):
    """Answers each request with the response of the first unused exchange whose request it is (same
    method, host, path, the recorded headers and JSON body): in order, so repeated requests get their
    successive answers, and skipping over the requests of probes that did not run."""

    def __init__(self, exchanges: list[dict]):
        super().__init__("data.probeville.example", "http")
        self.unused = list(exchanges)

    def request(self, method, host, path, *, body=None, headers=None, timeout=0.0) -> Response:
        for exchange in self.unused:
            if _is(exchange["request"], method, host, path, body, headers or {}):
                self.unused.remove(exchange)
                return _response(exchange["response"])
        raise AssertionError(f"no recorded exchange for {method} {host} {path} {headers} {body!r}")


def _is(recorded: dict, method: str, host: str, path: str, body: bytes | dict | list | None, headers: dict) -> bool:
    if (method, host, path) != (recorded["method"], recorded["host"], recorded["path"]):
        return False
    if any(headers.get(name) != value for name, value in (recorded.get("headers") or {}).items()):
        return False
    if "json" not in recorded:
        return True
    sent = body if isinstance(body, dict | list) else json.loads(body) if body is not None else None
    return sent == recorded["json"]


def _response(answer: dict) -> Response:
    message = Message()
    for name, value in (answer.get("headers") or {}).items():
        message[name] = value
    payload = json.dumps(answer["json"]).encode() if "json" in answer else answer.get("body", "").encode()
    return Response(answer["status"], message, payload)


def run_family(make_platform, family: ModuleType, exchanges: list[dict]) -> tuple[dict[str, Result], Replay]:
    """A probe family as `mims verify` runs it (sweep, probes, clean-ups) against the exchanges;
    its results by probe name and the replay (what it did not use)."""
    p = make_platform(exchanges)
    family.sweep(p)
    results = run_probes(family.probes(p))
    for cleanup in p.cleanups:
        cleanup()
    return {r.probe: r for r in results}, p.public


@pytest.fixture(scope="session")
def rendering():
    return Renderer().render(load_blueprint(BLUEPRINT))


@pytest.fixture
def platform(rendering):
    def make(exchanges: list[dict]) -> Platform:
        platform = Platform(rendering, api=None, public=Replay(exchanges), run_id=RUN_ID)  # type: ignore[arg-type]
        platform._tokens[VERIFY_CLIENT] = TOKEN
        return platform

    return make


@contextmanager
def https_server(
    folder: Path, names: list[str], handler: type[BaseHTTPRequestHandler]
) -> Iterator[tuple[int, str, list]]:
    """`handler` over HTTPS on a loopback port, with a certificate for `names` from a CA of its own;
    yields (port, the CA's file, the server names clients asked for)."""
    files = certificates.make((), tuple(names), ())
    for name in ("ca.crt", "apiserver.crt", "apiserver.key"):
        (folder / name).write_bytes(files[name])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "apiserver.crt", folder / "apiserver.key")
    asked: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: asked.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], str(folder / "ca.crt"), asked
    finally:
        server.shutdown()
