"""What the register publishes: JSON API documents and NGSI-LD entities built from validated entries."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mims.register.entries import Entry, schema

STANDARD = {"name": "Eurocities Algorithmic Transparency Standard", "version": "0.3.1"}
ENTITY_TYPE = "Algorithm"
# ATS field names that NGSI-LD reserves for itself get another attribute name in entities.
ENTITY_ATTRIBUTE = {"type": "oversight_type"}


def vocabulary(domain: str) -> str:
    """Base IRI of register terms; served as a JSON-LD context by the data-models component."""
    return f"https://api.{domain}/context/ats#"


def ats_context(domain: str) -> dict:
    base = vocabulary(domain)
    terms = {ENTITY_TYPE: f"{base}{ENTITY_TYPE}"}
    for field in schema()["properties"]:
        attribute = ENTITY_ATTRIBUTE.get(field, field)
        terms[attribute] = f"{base}{attribute}"
    return {"@context": terms}


def entity_id(city: str, slug: str) -> str:
    return f"urn:ngsi-ld:{ENTITY_TYPE}:{city}-{slug}"


def register_document(city_name: str, display_name: str, entries: list[Entry]) -> dict:
    return {
        "standard": STANDARD,
        "city": {"name": city_name, "display_name": display_name},
        "count": len(entries),
        "algorithms": [dict(entry.fields, id=entry.slug) for entry in entries],
    }


def ngsi_ld_entities(city_name: str, domain: str, entries: list[Entry]) -> list[dict[str, Any]]:
    """One entity per entry. The @context travels inline, and the NGSI-LD core context is implied
    by the standard, so the broker has nothing to fetch."""
    entities = []
    for entry in entries:
        entity: dict[str, Any] = {"id": entity_id(city_name, entry.slug), "type": ENTITY_TYPE}
        for field, value in sorted(entry.fields.items()):
            entity[ENTITY_ATTRIBUTE.get(field, field)] = {"type": "Property", "value": value}
        entity["@context"] = ats_context(domain)["@context"]
        entities.append(entity)
    return entities


def content_hash(*documents: Any) -> str:
    """Short stable hash: names the publishing Job so a changed register publishes again."""
    digest = hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest()
    return digest[:10]
