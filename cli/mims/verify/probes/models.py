"""MIM2 Shared Data Models: every @context document the blueprint declares is served, as declared,
as JSON-LD that browsers may fetch from other origins and caches may keep. That the broker expands
terms with them is probed with the broker (probes/context.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from mims.charts.inputs import contexts
from mims.verify.platform import Platform
from mims.verify.probe import Probe, ProbeFailed, expect

COMPONENT = "data-models"


def probes(p: Platform) -> Iterator[Probe]:
    endpoint = p.endpoint("data-models/contexts")
    if endpoint is None or endpoint.host is None:
        return
    host, base = endpoint.host, endpoint.path
    for name, text in sorted(contexts(p.rendering.loaded).items()):

        def served(name: str = name, text: str = text) -> None:
            p.need_running(COMPONENT, endpoint.workload)
            answer = p.request("GET", host, f"{base}{name}", headers={"Origin": "https://example.org"})
            url = p.public.url(host, f"{base}{name}")
            expect(answer.status == 200, f"{url}: {answer.brief()}")
            kind = answer.media_type
            expect(kind == "application/ld+json", f"{url}: Content-Type is `{kind}`, not application/ld+json")
            try:
                document = answer.json()
            except ValueError as error:
                raise ProbeFailed(f"{url}: not JSON ({error})") from None
            expect("@context" in document, f"{url}: the document has no `@context` member")
            expect(document == json.loads(text), f"{url}: the document differs from the one the blueprint declares")
            expect(
                answer.header("Access-Control-Allow-Origin") in ("*", "https://example.org"),
                f"{url}: no Access-Control-Allow-Origin for another origin (browsers could not load it)",
            )
            expect(
                answer.header("Cache-Control") or answer.header("ETag") or answer.header("Last-Modified"),
                f"{url}: neither Cache-Control, ETag nor Last-Modified (every use would fetch it again)",
            )

        yield Probe("MIM2", COMPONENT, f"@context {name} served as application/ld+json", served)
