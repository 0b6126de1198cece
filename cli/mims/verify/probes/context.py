"""MIM1 Context Information Management: the broker speaks the NGSI-LD API (ETSI GS CIM 009 V1.9.1)
through the gateway. Each probe is one operation of the specification, with the answer its clause
prescribes; the clause is in the probe's failure message. Probe entities have their own type and id
prefix, are written with the `verify` client's token and are deleted at the end, and at the start of
the next run should this one be interrupted."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator

from mims.register.documents import vocabulary
from mims.verify.platform import Platform
from mims.verify.probe import Probe, ProbeFailed, expect
from mims.verify.public import Response

COMPONENT = "broker"
TYPE = "MimsVerifyProbe"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
API = "/ngsi-ld/v1"
# A term of the city's register vocabulary (served by data-models as ats.jsonld), absent from the
# core context: the broker can only shorten its IRI to this name with the city's @context.
CITY_TERM = "description_short"
# Two places 1.1 km apart (Amsterdam, Dam square and Centraal station), for `near` queries.
HERE, THERE = [4.8932, 52.3731], [4.9003, 52.3791]


def probes(p: Platform) -> Iterator[Probe]:
    endpoint = p.endpoint("broker/ngsi-ld")
    if endpoint is None or endpoint.host is None:
        return
    ngsi = Ngsi(p, endpoint.host)

    def probe(name: str, check, needs: tuple[str, ...] = ()) -> Probe:
        def run() -> None:
            p.need_running(COMPONENT, endpoint.workload)
            if ngsi.remove_all not in p.cleanups:  # once a probe talks to the broker
                p.cleanups.append(ngsi.remove_all)
            check()

        return Probe("MIM1", COMPONENT, name, run, needs)

    created = "create entity (application/ld+json, @context in the body)"
    yield probe(created, ngsi.create_inline)
    yield probe("create entity (application/json, @context in a Link header)", ngsi.create_linked)
    yield probe("create an existing entity: 409 AlreadyExists as ProblemDetails", ngsi.create_again, (created,))
    yield probe("retrieve entity as application/ld+json: @context in the body", ngsi.retrieve_ld, (created,))
    yield probe("retrieve entity as application/json: @context in a Link header", ngsi.retrieve_json, (created,))
    if p.enabled("data-models"):
        yield Probe(
            "MIM2",
            COMPONENT,
            "the broker expands and compacts terms with the city's @context",
            ngsi.city_terms,
            (created,),
        )
    queried = ("create entity (application/json, @context in a Link header)", created)
    yield probe("query entities by type", ngsi.query_type, queried)
    yield probe("query entities by attribute (q)", ngsi.query_q, queried)
    yield probe("query entities by geometry (georel=near)", ngsi.query_near, queried)
    yield probe("batch upsert", ngsi.upsert, (created,))
    yield probe("partial attribute update", ngsi.update_attribute, (created,))
    if "ngsi-ld-temporal" in p.rendering.charts[COMPONENT].meta.provides:
        yield probe("temporal evolution of the entity", ngsi.temporal, ("partial attribute update",))
    yield probe("unknown entity: 404 ResourceNotFound as ProblemDetails", ngsi.not_found)
    yield probe("delete entity", ngsi.delete, (created,))


def sweep(p: Platform) -> None:
    endpoint = p.endpoint("broker/ngsi-ld")
    if endpoint is not None and endpoint.host is not None and p.replicas(COMPONENT, endpoint.workload):
        Ngsi(p, endpoint.host).remove_leftovers()


class Ngsi:
    """The probes' requests, one method per operation; entity ids carry the run id."""

    def __init__(self, p: Platform, host: str):
        self.p, self.host = p, host
        prefix = f"urn:ngsi-ld:{TYPE}:{p.run_id}"
        self.first, self.second, self.third = f"{prefix}-1", f"{prefix}-2", f"{prefix}-3"
        contexts = p.endpoint("data-models/contexts")
        self.context = p.public.url(contexts.host, f"{contexts.path}ats.jsonld") if contexts and contexts.host else None

    # -- requests

    def _request(self, method: str, path: str, body: object = None, headers: dict | None = None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        return self.p.request(method, self.host, API + path, body=data, headers=headers or {})

    def _write(self, method: str, path: str, body: object, linked: bool = False) -> Response:
        headers = {"Content-Type": "application/json" if linked else "application/ld+json"} | self.p.bearer()
        if linked:
            headers["Link"] = self._link()
        return self._request(method, path, body, headers)

    def _read(self, path: str, accept: str = "application/json", link: bool = True) -> Response:
        headers = {"Accept": accept} | ({"Link": self._link()} if link else {})
        return self._request("GET", path, headers=headers)

    def _link(self) -> str:
        return f'<{self.context or CORE_CONTEXT}>; rel="{CONTEXT_REL}"; type="application/ld+json"'

    def _url(self, path: str) -> str:
        return self.p.public.url(self.host, API + path)

    def _entity(self, entity_id: str, temperature: float, where: list[float]) -> dict:
        entity = {
            "id": entity_id,
            "type": TYPE,
            "temperature": {"type": "Property", "value": temperature},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": where}},
        }
        if self.context:
            entity[CITY_TERM] = {"type": "Property", "value": "mims verify probe"}
        return entity

    @staticmethod
    def _path(entity_id: str) -> str:
        return f"/entities/{urllib.parse.quote(entity_id, safe=':')}"

    # -- probes

    def create_inline(self) -> None:
        body = self._entity(self.first, 20, HERE) | {"@context": [c for c in (self.context, CORE_CONTEXT) if c]}
        self._created(self._write("POST", "/entities", body), self.first)

    def create_linked(self) -> None:
        self._created(self._write("POST", "/entities", self._entity(self.second, 10, THERE), linked=True), self.second)

    def _created(self, answer: Response, entity_id: str) -> None:
        expect(answer.status == 201, f"POST {self._url('/entities')}: {answer.brief()} (clause 6.4.3.1: 201 Created)")
        location = answer.header("Location")
        expect(
            entity_id in urllib.parse.unquote(location),
            f"POST {self._url('/entities')}: Location `{location}` does not name {entity_id} (clause 6.4.3.1)",
        )

    def create_again(self) -> None:
        body = self._entity(self.first, 20, HERE) | {"@context": [c for c in (self.context, CORE_CONTEXT) if c]}
        answer = self._write("POST", "/entities", body)
        self._problem(answer, 409, "AlreadyExists", f"POST {self._url('/entities')} of an existing entity")

    def retrieve_ld(self) -> None:
        answer = self._read(self._path(self.first), accept="application/ld+json")
        url = self._url(self._path(self.first))
        expect(answer.status == 200, f"GET {url}: {answer.brief()} (clause 6.5.3.1: 200 OK)")
        expect(
            answer.media_type == "application/ld+json",
            f"GET {url}: Content-Type {answer.media_type}, asked for application/ld+json (clause 6.3.6)",
        )
        body = answer.json()
        expect(body.get("id") == self.first, f"GET {url}: answered entity `{body.get('id')}`")
        expect("@context" in body, f"GET {url} as application/ld+json: no @context in the body (clause 6.3.6)")

    def retrieve_json(self) -> None:
        answer = self._read(self._path(self.first))
        url = self._url(self._path(self.first))
        expect(answer.status == 200, f"GET {url}: {answer.brief()} (clause 6.5.3.1: 200 OK)")
        expect(
            answer.media_type == "application/json",
            f"GET {url}: Content-Type {answer.media_type}, asked for application/json (clause 6.3.6)",
        )
        expect("@context" not in answer.json(), f"GET {url} as application/json: @context in the body (clause 6.3.6)")
        link = answer.header("Link")
        expect(
            CONTEXT_REL in link and link.strip().startswith("<"),
            f"GET {url} as application/json: no Link header to the @context (`{link}`; clause 6.3.6)",
        )

    def city_terms(self) -> None:
        """Without the city's @context the term is answered as its full IRI, with it by its name."""
        url = self._url(self._path(self.first))
        plain = self._read(self._path(self.first), link=False).json()
        full = vocabulary(self.p.blueprint.domain) + CITY_TERM
        expect(full in plain, f"GET {url} without the city's @context: no attribute `{full}` (keys: {sorted(plain)})")
        with_context = self._read(self._path(self.first)).json()
        expect(
            CITY_TERM in with_context,
            f"GET {url} with Link to {self.context}: no attribute `{CITY_TERM}` (keys: {sorted(with_context)})",
        )

    def _query(self, query: str) -> list[str]:
        path = f"/entities?type={TYPE}&{query}" if query else f"/entities?type={TYPE}"
        answer = self._read(path)
        expect(answer.status == 200, f"GET {self._url(path)}: {answer.brief()} (clause 6.4.3.2: 200 OK)")
        found = answer.json()
        expect(isinstance(found, list), f"GET {self._url(path)}: not an array of entities")
        return [e.get("id") for e in found]

    def query_type(self) -> None:
        found = self._query("")
        expect({self.first, self.second} <= set(found), f"query by type {TYPE}: found {found}, not both probe entities")

    def query_q(self) -> None:
        found = self._query(urllib.parse.urlencode({"q": "temperature>15"}))
        expect(self.first in found and self.second not in found, f"q=temperature>15 answered {found} (clause 4.9)")

    def query_near(self) -> None:
        coordinates = json.dumps(HERE, separators=(",", ":"))
        query = urllib.parse.urlencode(
            {"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": coordinates}
        )
        found = self._query(query)
        expect(
            self.first in found and self.second not in found,
            f"georel=near;maxDistance==500 answered {found} (clause 4.10)",
        )

    def upsert(self) -> None:
        context = [c for c in (self.context, CORE_CONTEXT) if c]
        batch = [
            self._entity(self.third, 5, THERE) | {"@context": context},
            self._entity(self.first, 21, HERE) | {"@context": context},
        ]
        answer = self._write("POST", "/entityOperations/upsert", batch)
        url = self._url("/entityOperations/upsert")
        expect(
            answer.status == 201,
            f"POST {url} of one new and one existing entity: {answer.brief()} (clause 6.15.3.1: 201)",
        )
        created = answer.json()
        expect(
            created == [self.third],
            f"POST {url}: answered {created}, the created entity only is [{self.third}] (clause 6.15.3.1)",
        )

    def update_attribute(self) -> None:
        path = f"{self._path(self.first)}/attrs/temperature"
        answer = self._write("PATCH", path, {"type": "Property", "value": 25}, linked=True)
        expect(answer.status == 204, f"PATCH {self._url(path)}: {answer.brief()} (clause 6.7.3.1: 204 No Content)")
        value = self._read(self._path(self.first)).json().get("temperature", {}).get("value")
        expect(value == 25, f"after PATCH {self._url(path)} the entity's temperature is {value}, not 25")

    def temporal(self) -> None:
        path = f"/temporal{self._path(self.first)}"
        answer = self._read(path)
        expect(answer.status == 200, f"GET {self._url(path)}: {answer.brief()} (clause 6.19.3.1: 200 OK)")
        instances = answer.json().get("temperature")
        instances = instances if isinstance(instances, list) else [instances] if instances else []
        values = {i.get("value") for i in instances if isinstance(i, dict)}
        expect(
            25 in values,
            f"GET {self._url(path)}: temperature instances {sorted(values, key=str)} lack 25 (clause 4.5.7)",
        )

    def not_found(self) -> None:
        missing = f"urn:ngsi-ld:{TYPE}:{self.p.run_id}-missing"
        self._problem(self._read(self._path(missing)), 404, "ResourceNotFound", f"GET {self._url(self._path(missing))}")

    def delete(self) -> None:
        for entity_id in (self.first, self.second, self.third):
            path = self._path(entity_id)
            answer = self._request("DELETE", path, headers=self.p.bearer())
            expect(answer.status == 204, f"DELETE {self._url(path)}: {answer.brief()} (clause 6.5.3.2: 204 No Content)")
        answer = self._read(self._path(self.first))
        expect(
            answer.status == 404,
            f"GET {self._url(self._path(self.first))} after DELETE: {answer.brief()} (expected 404)",
        )

    def _problem(self, answer: Response, status: int, kind: str, what: str) -> None:
        expect(answer.status == status, f"{what}: {answer.brief()} (expected {status} {kind})")
        expect(
            answer.media_type == "application/json",
            f"{what}: error body is {answer.media_type}, not application/json (clause 5.5.3)",
        )
        try:
            problem = answer.json()
        except ValueError:
            raise ProbeFailed(f"{what}: the error body is not JSON (clause 5.5.3: ProblemDetails)") from None
        expect(problem.get("type") == ERRORS + kind, f"{what}: error type `{problem.get('type')}`, not {ERRORS}{kind}")
        expect(problem.get("title"), f"{what}: the ProblemDetails has no title (clause 5.5.3)")

    # -- clean-up

    def remove_all(self) -> None:
        for entity_id in (self.first, self.second, self.third):
            self._request("DELETE", self._path(entity_id), headers=self.p.bearer())

    def remove_leftovers(self) -> None:
        answer = self._read(f"/entities?type={TYPE}&limit=100")
        if answer.status == 200:
            for entity in answer.json():
                self._request("DELETE", self._path(entity["id"]), headers=self.p.bearer())
