"""The blueprint's JSON Schema and its Markdown reference, both generated from the model.

`blueprints/blueprint.schema.json` and `docs/blueprint-reference.md` are these outputs checked in
(a test fails when they are stale): regenerate with `mims schema -o ...` and `mims schema --markdown`.
"""

from __future__ import annotations

import json
from typing import Any

from mims.blueprint.model import Blueprint

SCHEMA_ID = "https://mims.example/schemas/blueprint-v1.schema.json"


def json_schema() -> dict[str, Any]:
    schema = Blueprint.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def markdown_reference() -> str:
    schema = json_schema()
    defs = schema.get("$defs", {})
    lines = [
        "# Blueprint reference",
        "",
        "Generated from the blueprint model by `mims schema --markdown`; do not edit by hand.",
        "Every mapping rejects unknown keys. The JSON Schema is `blueprints/blueprint.schema.json`",
        "(point your editor's YAML language server at it).",
        "",
    ]
    _table(lines, "blueprint", schema, defs)
    seen: set[str] = set()
    queue = _refs(schema.get("properties", {}))
    while queue:
        ref = queue.pop(0)
        if ref in seen or ref not in defs:
            continue
        seen.add(ref)
        _table(lines, ref, defs[ref], defs)
        queue.extend(_refs(defs[ref].get("properties", {})))
    return "\n".join(lines).rstrip() + "\n"


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[-1])
            else:
                found.extend(_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_refs(item))
    return found


def _table(lines: list[str], title: str, node: dict, defs: dict) -> None:
    props = node.get("properties", {})
    if not props:
        return
    lines += [f"## {title}", ""]
    if node.get("description"):
        lines += [" ".join(node["description"].split()), ""]
    lines += ["| key | type | default | required | description |", "|---|---|---|---|---|"]
    required = set(node.get("required", []))
    for key, prop in props.items():
        shown = "default" in prop and not isinstance(prop["default"], dict)
        default = f"`{json.dumps(prop['default'])}`" if shown else ""
        description = " ".join((prop.get("description") or "").split()).replace("|", "\\|")
        lines.append(f"| `{key}` | {_type(prop)} | {default} | {'yes' if key in required else ''} | {description} |")
    lines.append("")


def _type(prop: dict) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    extra = []
    if "pattern" in prop:
        extra.append(f"pattern `{prop['pattern']}`".replace("|", "\\|"))
    for bound in ("minimum", "maximum", "exclusiveMinimum", "maxLength", "minLength"):
        if bound in prop:
            extra.append(f"{bound} {prop[bound]}")
    return kind + (f" ({', '.join(extra)})" if extra else "")
