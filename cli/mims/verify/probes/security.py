"""MIM6 Security: every write through the gateway needs a realm token that carries the component's
write role (401 without a token, 403 with one of a client that lacks the role); TLS where the
blueprint asks for it; nothing public but what the blueprint declares; and no pod of a foreign
namespace reaches a database or any other stateful service."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mims.charts.images import VERIFY_PROBE_IMAGE, pulled_name
from mims.verify import incluster
from mims.verify.platform import NO_ROLES_CLIENT, Platform
from mims.verify.probe import Probe, ProbeFailed, ProbeSkipped, expect
from mims.verify.public import Response

if TYPE_CHECKING:
    from mims.charts.render import ResolvedEndpoint

COMPONENT = "gateway"
CERTIFICATE_DAYS_LEFT = 14
KEYCLOAK_CONSOLE = "/admin/master/console/"


def _json_with(key: str):
    def seen(answer: Response) -> bool:
        try:
            return key in answer.json()
        except ValueError:
            return False

    return seen


# Consoles and admin APIs of the platform's software, how each is recognised in a 200 answer, and the
# endpoint that makes it public on its own host (Keycloak's console: docs/components/iam.md; Grafana:
# docs/components/monitoring.md). No other public host may answer with any of them.
ADMIN_CONSOLES = (
    ("Keycloak's admin console", KEYCLOAK_CONSOLE, lambda a: b"keycloak" in a.body.lower(), "iam/oidc"),
    ("Solr's admin API", "/solr/admin/info/system?wt=json", _json_with("lucene"), None),
    ("Prometheus's API", "/api/v1/status/buildinfo", _json_with("data"), None),
    ("Grafana's API", "/api/health", _json_with("database"), "monitoring/grafana"),
)


def probes(p: Platform) -> Iterator[Probe]:
    if p.enabled("gateway"):
        yield from _token_probes(p)
        yield from _exposure_probes(p)
        yield Probe("MIM6", COMPONENT, "TLS: valid certificate, not expiring, HSTS", lambda: _tls(p))
    yield Probe("MIM6", "foundation", "a foreign namespace reaches no database", lambda: _isolation(p))


def sweep(p: Platform) -> None:
    incluster.sweep(p.api)


def _token_probes(p: Platform) -> Iterator[Probe]:
    protected = [e for e in p.rendering.endpoints.values() if e.public and e.protocol == "http" and e.writes_need_token]
    for endpoint in protected:
        what = "any request" if endpoint.reads_need_token else "a write"
        label = f"{endpoint.component}/{endpoint.name}"

        def no_token(endpoint: ResolvedEndpoint = endpoint) -> None:
            request, answer = _attempt(p, endpoint, {})
            expect(answer.status == 401, f"{request} without a token: {answer.brief()} (expected 401)")
            expect(
                answer.header("WWW-Authenticate").startswith("Bearer"),
                f"{request}: 401 without `WWW-Authenticate: Bearer` (RFC 6750 section 3)",
            )

        yield Probe("MIM6", endpoint.component, f"{label}: {what} without a token gets 401", no_token)

        def other_client(endpoint: ResolvedEndpoint = endpoint) -> None:
            request, answer = _attempt(p, endpoint, p.bearer(NO_ROLES_CLIENT))
            expect(
                answer.status == 403,
                f"{request} with a valid token of client `{NO_ROLES_CLIENT}`, which has no write role: "
                f"{answer.brief()} (expected 403)",
            )

        yield Probe("MIM6", endpoint.component, f"{label}: {what} with another client's token gets 403", other_client)


def _attempt(p: Platform, endpoint: ResolvedEndpoint, headers: dict[str, str]) -> tuple[str, Response]:
    """What the endpoint must refuse: a write (POST with a harmless JSON body), or for an endpoint whose
    reads need a token too, a GET. Returns `METHOD URL` and the answer."""
    p.need_running(COMPONENT, "gateway")
    host = endpoint.host or ""
    method, body = ("GET", None) if endpoint.reads_need_token else ("POST", b"{}")
    if body is not None:
        headers = {"Content-Type": "application/json"} | headers
    return f"{method} {p.public.url(host, endpoint.path)}", p.request(
        method, host, endpoint.path, body=body, headers=headers
    )


def _exposure_probes(p: Platform) -> Iterator[Probe]:
    public = [e for e in p.rendering.endpoints.values() if e.public and e.protocol == "http"]
    hosts = sorted({e.host for e in public if e.host})

    def undeclared() -> None:
        p.need_running(COMPONENT, "gateway")
        answer = p.request("GET", "mims-verify-undeclared", "/")
        expect(answer.status == 404, f"a host the blueprint does not declare: {answer.brief()} (expected 404)")
        for host in hosts:
            if not any(e.path == "/" for e in public if e.host == host):
                answer = p.request("GET", host, "/mims-verify-undeclared")
                url = p.public.url(host, "/mims-verify-undeclared")
                expect(answer.status == 404, f"{url}, a path no endpoint declares: {answer.brief()} (expected 404)")
        for endpoint in public:
            for hidden in endpoint.hidden_paths:
                answer = p.request("GET", endpoint.host or "", hidden)
                url = p.public.url(endpoint.host or "", hidden)
                expect(answer.status == 404, f"{url}, declared hidden: {answer.brief()} (expected 404)")

    yield Probe("MIM6", COMPONENT, "undeclared hosts, paths and hidden paths answer 404", undeclared)

    def consoles() -> None:
        p.need_running(COMPONENT, "gateway")
        oidc = p.endpoint("iam/oidc")
        for host in hosts:
            for console, path, seen, declared_by in ADMIN_CONSOLES:
                declaring = p.endpoint(declared_by) if declared_by else None
                if declaring is not None and declaring.host == host:
                    continue
                answer = p.request("GET", host, path)
                expect(
                    not (answer.status == 200 and seen(answer)),
                    f"{p.public.url(host, path)}: {console} is public, and no endpoint of the blueprint declares it",
                )
        if oidc is not None and oidc.host is not None and p.replicas("iam", oidc.workload):
            answer = p.request("GET", oidc.host, KEYCLOAK_CONSOLE)
            expect(
                answer.status == 200,
                f"{p.public.url(oidc.host, KEYCLOAK_CONSOLE)}: Keycloak's admin console, public by design, answers {answer.brief()}",
            )

    yield Probe("MIM6", COMPONENT, "admin consoles answer only where the blueprint declares them", consoles)


def _tls(p: Platform) -> None:
    mode = p.blueprint.tls.mode
    if mode == "none":
        raise ProbeSkipped("tls.mode none: the blueprint asks for plain HTTP (local trials only)")
    p.need_running(COMPONENT, "gateway")
    for endpoint in (e for e in p.rendering.endpoints.values() if e.public and e.protocol == "http"):
        host = endpoint.host or ""
        try:
            answer = p.request("GET", host, endpoint.path)
        except ssl.SSLCertVerificationError as error:
            raise ProbeFailed(f"{p.public.name(host)}: certificate not trusted: {error.verify_message}") from None
        certificate = p.public.last_certificate or {}
        days = (ssl.cert_time_to_seconds(certificate["notAfter"]) - time.time()) / 86400
        expect(
            days >= CERTIFICATE_DAYS_LEFT,
            f"{p.public.name(host)}: the certificate expires in {days:.0f} days ({certificate['notAfter']})",
        )
        hsts = answer.header("Strict-Transport-Security")
        expect(hsts.startswith("max-age="), f"{p.public.url(host, endpoint.path)}: no Strict-Transport-Security header")


def _isolation(p: Platform) -> None:
    targets, not_running = _stateful_services(p)
    if not targets:
        raise ProbeSkipped(
            "the blueprint runs no database" + (f" ({', '.join(not_running)} scaled to 0)" if not_running else "")
        )
    image = pulled_name(p.rendering, VERIFY_PROBE_IMAGE)
    reached = incluster.reachable(p.api, p.run_id, targets, image)
    expect(not reached, f"a pod in a namespace of its own connected to {', '.join(sorted(reached))}")


def _stateful_services(p: Platform) -> tuple[list[incluster.Target], list[str]]:
    """Every port of every Service in front of a StatefulSet's pods (databases, Solr, Prometheus)."""
    objects = p.rendering.objects()
    statefulsets = [o for o in objects if o["kind"] == "StatefulSet"]
    targets, not_running = [], []
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"].get("selector") or {}
        namespace = service["metadata"]["namespace"]
        for sts in statefulsets:
            labels = sts["spec"]["selector"].get("matchLabels", {})
            if sts["metadata"]["namespace"] != namespace or not selector or selector.items() - labels.items():
                continue
            name = service["metadata"]["name"]
            if not sts["spec"].get("replicas", 1):
                not_running.append(f"{namespace}/{sts['metadata']['name']}")
                continue
            if service["spec"].get("clusterIP") == "None":  # headless (metrics): the same pods as the Service
                continue
            host = f"{name}.{namespace}.svc.cluster.local"
            for port in service["spec"]["ports"]:
                targets.append(incluster.Target(f"{namespace}/{name}:{port['port']}", host, port["port"]))
    return targets, sorted(set(not_running))
