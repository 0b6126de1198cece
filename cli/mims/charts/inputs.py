"""Inputs some charts need beyond the blueprint: register entries, JSON-LD contexts, places' collections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mims.blueprint.loader import LoadedBlueprint
from mims.errors import InvalidInput, Problem
from mims.places.collections import load_collections
from mims.register import documents
from mims.register.entries import load_entries, schema

MAX_CONTEXT_BYTES = 256 * 1024


def component_inputs(component: str, loaded: LoadedBlueprint) -> dict[str, Any]:
    if component == "ai-registry":
        return register_inputs(loaded)
    if component == "data-models":
        return {"contexts": contexts(loaded)}
    if component == "places":
        return {"collections": [c.chart_input() for c in load_collections(loaded)]}
    return {}


def register_inputs(loaded: LoadedBlueprint) -> dict[str, Any]:
    bp = loaded.blueprint
    entries = load_entries(entries_folder(loaded), loaded.base_dir)
    register = documents.register_document(bp.city.name, bp.city.display_name, entries)
    entities = documents.ngsi_ld_entities(bp.city.name, bp.domain, entries)
    return {
        "register": register,
        "register_entries": entries,
        "register_schema": schema(),
        "register_entities": entities,
        "register_hash": documents.content_hash(register, entities),
    }


def entries_folder(loaded: LoadedBlueprint) -> Path:
    return loaded.base_dir / loaded.blueprint.components.ai_registry.options.entries_dir


def contexts(loaded: LoadedBlueprint) -> dict[str, str]:
    """File name -> JSON text of every @context document the city serves."""
    bp = loaded.blueprint
    served = {"ats.jsonld": json.dumps(documents.ats_context(bp.domain), indent=2, sort_keys=True)}
    folder_option = bp.components.data_models.options.contexts_dir
    if not folder_option:
        return served
    folder = loaded.base_dir / folder_option
    field = ("components", "data_models", "options", "contexts_dir")
    if not folder.is_dir():
        raise InvalidInput([loaded.source.problem(field, f"folder `{folder}` does not exist")])
    problems = []
    for path in sorted(folder.glob("*.jsonld")):
        display = str(path)
        if path.name in served:
            problems.append(Problem(display, None, None, "", f"`{path.name}` is reserved for the mims register"))
            continue
        raw = path.read_bytes()
        if len(raw) > MAX_CONTEXT_BYTES:
            problems.append(Problem(display, None, None, "", f"larger than {MAX_CONTEXT_BYTES} bytes"))
            continue
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            col = getattr(exc, "colno", None)
            problems.append(Problem(display, line, col, "", f"invalid JSON: {getattr(exc, 'msg', exc)}"))
            continue
        if not isinstance(doc, dict) or "@context" not in doc:
            problems.append(
                Problem(display, 1, 1, "@context", "a JSON-LD context document needs a top-level `@context` key")
            )
            continue
        served[path.name] = json.dumps(doc, indent=2, sort_keys=True)
    if problems:
        raise InvalidInput(problems)
    return served
