"""MIM5 Fair AI: the algorithm register publishes every entry of the blueprint, each valid against
the Eurocities Algorithmic Transparency Standard 0.3.1, as JSON and on its HTML page, and mirrors
them into the context broker as NGSI-LD entities."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterator

import jsonschema

from mims.charts.inputs import register_inputs
from mims.register.documents import ngsi_ld_entities
from mims.register.entries import schema
from mims.verify.platform import Platform
from mims.verify.probe import Probe, ProbeFailed, expect

COMPONENT = "ai-registry"


def probes(p: Platform) -> Iterator[Probe]:
    endpoint = p.endpoint("ai-registry/register")
    if endpoint is None or endpoint.host is None:
        return
    host = endpoint.host
    entries = register_inputs(p.rendering.loaded)["register_entries"]

    def json_api() -> None:
        p.need_running(COMPONENT, endpoint.workload)
        answer = p.request("GET", host, "/api/register.json")
        url = p.public.url(host, "/api/register.json")
        expect(answer.status == 200, f"{url}: {answer.brief()}")
        kind = answer.media_type
        expect(kind == "application/json", f"{url}: Content-Type is `{kind}`, not application/json")
        try:
            published = {a.get("id"): a for a in answer.json()["algorithms"]}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProbeFailed(f"{url}: not a register document (`algorithms` list of objects): {error}") from None
        missing = sorted({e.slug for e in entries} - set(published))
        expect(not missing, f"{url}: entries of the blueprint missing: {', '.join(missing)}")
        extra = sorted(set(published) - {e.slug for e in entries})
        expect(not extra, f"{url}: entries the blueprint does not have: {', '.join(map(str, extra))}")
        validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
        for slug, algorithm in sorted(published.items()):
            fields = {k: v for k, v in algorithm.items() if k != "id"}
            invalid = next(iter(sorted(validator.iter_errors(fields), key=lambda e: list(e.path))), None)
            if invalid is not None:
                where = "/".join(map(str, invalid.path)) or "(entry)"
                raise ProbeFailed(f"{url}: entry `{slug}` is not valid ATS 0.3.1 at {where}: {invalid.message}")

    yield Probe("MIM5", COMPONENT, "register JSON has every entry, each valid ATS 0.3.1", json_api)

    def page() -> None:
        p.need_running(COMPONENT, endpoint.workload)
        answer = p.request("GET", host, "/")
        url = p.public.url(host, "/")
        expect(answer.status == 200, f"{url}: {answer.brief()}")
        expect(answer.header("Content-Type").startswith("text/html"), f"{url}: not text/html")
        text = answer.body.decode("utf-8", "replace")
        missing = [e.slug for e in entries if html.escape(str(e.fields["name"])) not in text]
        expect(not missing, f"{url}: the page does not list {', '.join(missing)}")

    yield Probe("MIM5", COMPONENT, "register page lists every entry", page)

    broker = p.endpoint("broker/ngsi-ld")
    if broker is None or broker.host is None or not entries:
        return
    entities = ngsi_ld_entities(p.city, p.blueprint.domain, entries)

    def mirrored() -> None:
        p.need_running("broker", broker.workload)
        missing = []
        for entity in entities:
            path = f"/ngsi-ld/v1/entities/{urllib.parse.quote(entity['id'], safe='')}"
            answer = p.request("GET", broker.host or "", path, headers={"Accept": "application/ld+json"})
            if answer.status == 404:
                missing.append(entity["id"])
            else:
                expect(answer.status == 200, f"{p.public.url(broker.host or '', path)}: {answer.brief()}")
        expect(not missing, f"the broker has no entity {', '.join(missing)} (the register-publish Job's log says why)")

    yield Probe("MIM5", COMPONENT, "register entries are NGSI-LD entities in the broker", mirrored)
