"""Pydantic validation errors -> Problems with file:line:column, a did-you-mean and a readable message.

Shared by every file a person writes (blueprints, chart.yaml, stacks, price sheets); it imports no
other mims module but the model's patterns, so any of them can use it.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from mims.blueprint.model import (
    COUNTRY_PATTERN,
    DNS_LABEL_PATTERN,
    HOSTNAME_PATTERN,
    ORIGIN_PATTERN,
    REGISTRY_PATTERN,
)
from mims.errors import Problem
from mims.yamlsource import SourceDoc, type_name


def pydantic_problems(exc: ValidationError, source: SourceDoc, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = allowed_keys(model, loc[:-1])
            message = f"unknown key `{loc[-1]}`"
            guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            if guess:
                message += f"; did you mean `{guess[0]}`?"
            elif allowed:
                message += f"; allowed keys: {', '.join(allowed)}"
            problems.append(source.problem(loc, message, key=True))
            continue
        if kind == "missing":
            message = f"required key `{loc[-1]}` is missing"
            problems.append(source.problem(loc[:-1], message, key=True))
            continue
        message = _clean(error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, "))
        if kind == "string_pattern_mismatch":
            pattern = (error.get("ctx") or {}).get("pattern", "")
            message = PATTERN_HINTS.get(pattern, message)
        if kind not in ("value_error", "assertion_error"):
            given = error.get("input")
            if isinstance(given, (dict, list)) or given is None:
                message += f" (got {type_name(given)})"
            elif len(repr(given)) <= 60:
                message += f" (got {given!r})"
        if kind == "literal_error" and isinstance(error.get("input"), str):
            options = [str(v) for v in (error.get("ctx") or {}).get("expected", "").replace("'", "").split(" or ")]
            guess = difflib.get_close_matches(error["input"], options, n=1, cutoff=0.6)
            if guess:
                message += f"; did you mean `{guess[0]}`?"
        problems.append(source.problem(loc, message))
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


PATTERN_HINTS = {
    DNS_LABEL_PATTERN: "must be a DNS label: lowercase letters, digits and `-`, starting with a letter",
    COUNTRY_PATTERN: "must be an ISO 3166-1 alpha-2 country code in capitals, e.g. `NL`",
    HOSTNAME_PATTERN: "must be a lowercase DNS name such as `data.example.org`",
    ORIGIN_PATTERN: "must be an origin such as `https://maps.example.org` (scheme and host, no path)",
    REGISTRY_PATTERN: "must be a registry host with an optional port and path, such as "
    "`registry.city.example/mims` or `localhost:5000`: lowercase, no scheme (`https://`), "
    "no tag or digest, no trailing `/`; a host needs a dot or a port",
}


def _clean(msg: str) -> str:
    return msg[0].lower() + msg[1:] if msg else msg


_UNION_TAG = re.compile(
    r"(function-(after|before|wrap|plain)|tagged-union|union|nullable|lax-or-strict|"
    r"json-or-python|chain|constrained-\w+|literal|list|dict|str|int|float|bool)\[.*\]"
)


def _is_union_tag(part: Any) -> bool:
    """pydantic puts schema names such as `function-after[...]` into the locations of union members."""
    return isinstance(part, str) and _UNION_TAG.fullmatch(part) is not None


def allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model found by walking `loc` through annotations (for did-you-mean)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (list, tuple):
            current = (typing.get_args(current) or (Any,))[0]
        elif typing.get_origin(current) is dict:
            current = (typing.get_args(current) or (Any, Any))[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
