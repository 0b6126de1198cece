"""Register entries: one YAML file per algorithm, validated against the ATS v0.3.1 JSON Schema."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from mims import paths
from mims.errors import InvalidInput, Problem
from mims.yamlsource import SourceDoc, load_yaml

SCHEMA_FILE = "ats-v0.3.1.schema.json"
SLUG = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_ENTRIES = 500


@dataclass(frozen=True)
class Entry:
    slug: str
    fields: dict[str, Any]


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads((paths.blueprints_dir() / SCHEMA_FILE).read_text())


def load_entries(folder: Path, display_base: Path) -> list[Entry]:
    """All entries in `folder` (sorted by file name); every problem in every file is reported at once."""
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise InvalidInput([Problem(str(folder), None, None, "", "register entries must be a folder of YAML files")])
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    if len(files) > MAX_ENTRIES:
        raise InvalidInput([Problem(str(folder), None, None, "", f"more than {MAX_ENTRIES} entries")])
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    problems: list[Problem] = []
    entries: list[Entry] = []
    for path in files:
        display = _display(path, display_base)
        if not SLUG.match(path.stem):
            problems.append(
                Problem(
                    display,
                    None,
                    None,
                    "",
                    "file name must be a lowercase slug such as `parking-permit-check.yaml`; it becomes the entry id",
                )
            )
            continue
        try:
            source = load_yaml(path, display)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        found = [_problem(source, error) for error in validator.iter_errors(source.data)]
        if found:
            problems.extend(sorted(found, key=lambda p: (p.line or 0, p.column or 0)))
        else:
            entries.append(Entry(path.stem, source.data))
    if problems:
        raise InvalidInput(problems)
    return entries


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _problem(source: SourceDoc, error: jsonschema.ValidationError) -> Problem:
    path = tuple(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return source.problem(path, f"required field `{missing}` is missing", key=True)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(schema()["properties"]))
        key = extra[0] if extra else ""
        guess = difflib.get_close_matches(key, list(schema()["properties"]), n=1, cutoff=0.6)
        hint = f"; did you mean `{guess[0]}`?" if guess else ""
        return source.problem(path + (key,), f"`{key}` is not a field of the standard{hint}", key=True)
    messages = {
        "maxLength": lambda: f"is {len(error.instance)} characters; at most {error.validator_value} allowed",
        "minLength": lambda: f"is {len(error.instance)} characters; at least {error.validator_value} needed",
        "enum": lambda: f"`{error.instance}` is not one of: {', '.join(error.validator_value)}",
        "const": lambda: f"must be `{error.validator_value}`",
        "type": lambda: f"must be a {error.validator_value}",
        "pattern": lambda: _pattern_hint(path, error),
        "format": lambda: f"`{error.instance}` is not a valid {error.validator_value}",
    }
    message = messages.get(error.validator, lambda: error.message)()
    return source.problem(path, message)


def _pattern_hint(path: tuple, error: jsonschema.ValidationError) -> str:
    field = path[-1] if path else ""
    fmt = schema()["properties"].get(field, {}).get("format")
    if field == "lang":
        return "must be a two-letter ISO 639-1 code such as `en`"
    if fmt:
        return f"`{error.instance}` is not a valid {fmt}"
    return f"does not match {error.validator_value}"
