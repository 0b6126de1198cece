"""MIM3 Ecosystem Transactions: the catalogue's API answers; its DCAT catalogue parses as Turtle and
as JSON-LD and conforms to the DCAT-AP 3.0.0 SHACL shapes (the profile the chart configures,
`euro_dcat_ap_3`); and a dataset published through the gateway with a realm token appears in it.

Writing to CKAN takes two credentials (docs/components/catalogue.md, "Publishing"): the realm token
for the gateway and a CKAN API token, made for the run in the CKAN pod and revoked after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mims.verify.platform import Platform
from mims.verify.probe import Probe, ProbeFailed, expect
from mims.verify.public import Response

if TYPE_CHECKING:
    import rdflib  # imported where used: `mims` starts without it

COMPONENT = "catalogue"
SHAPES = Path(__file__).resolve().parent.parent / "shapes" / "dcat-ap-3.0.0-SHACL.ttl"
PREFIX = "mims-verify-"
FEED = {"text/turtle": "/catalog.ttl", "application/ld+json": "/catalog.jsonld"}


def probes(p: Platform) -> Iterator[Probe]:
    endpoint = p.endpoint("catalogue/ckan")
    if endpoint is None or endpoint.host is None:
        return
    host = endpoint.host

    def running() -> None:
        p.need_running(COMPONENT, endpoint.workload)

    def api() -> None:
        running()
        answer = p.request("GET", host, "/api/3/action/status_show")
        _ckan_ok(p, host, "/api/3/action/status_show", answer)

    yield Probe("MIM3", COMPONENT, "CKAN API answers", api)

    for kind, path in FEED.items():

        def parses(kind: str = kind, path: str = path) -> None:
            running()
            graph = _feed(p, host, path, kind)
            expect(_catalogs(graph), f"{p.public.url(host, path)}: no dcat:Catalog in it")

        yield Probe("MIM3", COMPONENT, f"DCAT catalogue {path} parses ({kind})", parses, needs=("CKAN API answers",))

    yield Probe(
        "MIM3",
        COMPONENT,
        "DCAT catalogue conforms to DCAT-AP 3.0.0 (SHACL)",
        lambda: _conforms(p, host),
        needs=("DCAT catalogue /catalog.ttl parses (text/turtle)",),
    )
    yield Probe(
        "MIM3",
        COMPONENT,
        "a dataset published with a token appears in the DCAT catalogue",
        lambda: _publish(p, host),
        needs=("DCAT catalogue /catalog.ttl parses (text/turtle)",),
    )


def _ckan_ok(p: Platform, host: str, path: str, answer: Response) -> dict:
    url = p.public.url(host, path)
    expect(answer.status == 200, f"{url}: {answer.brief()}")
    try:
        body = answer.json()
    except ValueError:
        raise ProbeFailed(f"{url}: not JSON: {answer.brief()}") from None
    expect(body.get("success") is True, f"{url}: success is not true: {answer.brief()}")
    return body["result"]


def _feed(p: Platform, host: str, path: str, kind: str) -> rdflib.Graph:
    import rdflib

    answer = p.request("GET", host, path)
    url = p.public.url(host, path)
    expect(answer.status == 200, f"{url}: {answer.brief()}")
    served = answer.media_type
    expect(served == kind, f"{url}: Content-Type is `{served}`, not {kind}")
    graph = rdflib.Graph()
    try:
        graph.parse(data=answer.body, format="turtle" if kind == "text/turtle" else "json-ld", publicID=url)
    except Exception as error:  # rdflib raises parser-specific types
        raise ProbeFailed(f"{url}: does not parse as {kind}: {error}") from None
    return graph


def _catalogs(graph: rdflib.Graph) -> list:
    from rdflib.namespace import DCAT, RDF

    return list(graph.subjects(RDF.type, DCAT.Catalog))


def _conforms(p: Platform, host: str) -> None:
    import pyshacl
    import rdflib

    graph = _feed(p, host, FEED["text/turtle"], "text/turtle")
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, results, _ = pyshacl.validate(graph, shacl_graph=shapes, inference="none", allow_warnings=True)
    if conforms:
        return
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    violations = []
    for result in results.subjects(rdflib.RDF.type, sh.ValidationResult):
        if results.value(result, sh.resultSeverity) != sh.Violation:
            continue
        focus, path, message = (results.value(result, term) for term in (sh.focusNode, sh.resultPath, sh.resultMessage))
        violations.append(f"{focus} {path}: {message}")
    expect(not violations, f"{len(violations)} DCAT-AP 3.0.0 violations, first: " + "; ".join(sorted(violations)[:3]))


def _publish(p: Platform, host: str) -> None:
    from rdflib.namespace import DCAT, DCTERMS, RDF

    p.need_running(COMPONENT, "ckan")
    created = p.exec(
        COMPONENT, "ckan", "ckan", f"sh /etc/ckan/ckan-cli.sh user token add admin {PREFIX}{p.run_id} | tail -n 1"
    )
    ckan_token = created.strip().split()[-1] if created.strip() else ""
    # The output is not quoted: it may hold a token.
    expect(ckan_token.count(".") == 2, "`ckan user token add` in the CKAN pod printed no API token (a JWT) last")
    headers = {"X-CKAN-API-Key": ckan_token} | p.bearer()

    def action(name: str, data: dict) -> Any:
        path = f"/api/3/action/{name}"
        return _ckan_ok(p, host, path, p.request("POST", host, path, body=data, headers=headers))

    organization, dataset = f"{PREFIX}{p.run_id}", f"{PREFIX}{p.run_id}"
    title = f"mims verify probe {p.run_id}"
    try:
        _purge_leftovers(p, host, action)
        action("organization_create", {"name": organization, "title": "mims verify"})
        action("package_create", {"name": dataset, "title": title, "owner_org": organization, "notes": "Probe data"})
        graph = _feed(p, host, FEED["text/turtle"], "text/turtle")
        titles = {str(graph.value(d, DCTERMS.title)) for d in graph.subjects(RDF.type, DCAT.Dataset)}
        expect(title in titles, f"{p.public.url(host, FEED['text/turtle'])}: no dcat:Dataset titled `{title}`")
    finally:
        for purge, data in (
            ("dataset_purge", {"id": dataset}),
            ("organization_purge", {"id": organization}),
            ("api_token_revoke", {"token": ckan_token}),
        ):
            try:
                action(purge, data)
            except ProbeFailed:
                pass  # never created; the next run's sweep removes a leftover dataset or organization


def _purge_leftovers(p: Platform, host: str, action: Callable[[str, dict], Any]) -> None:
    """Datasets, organizations and CKAN API tokens (of the `admin` user: `api_token_list` answers each
    token's `id`, its jti, and `name`; CKAN 2.11.6 ckan/logic/action/get.py) an interrupted run left."""
    found = action("package_search", {"q": f"name:{PREFIX}*", "include_private": True})
    for leftover in found["results"]:
        action("dataset_purge", {"id": leftover["name"]})
    for name in action("organization_list", {}):
        if name.startswith(PREFIX):
            action("organization_purge", {"id": name})
    for token in action("api_token_list", {"user_id": "admin"}):
        if token["name"].startswith(PREFIX) and token["name"] != f"{PREFIX}{p.run_id}":
            action("api_token_revoke", {"jti": token["id"]})
