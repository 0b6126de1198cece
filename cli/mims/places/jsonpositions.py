"""Where a value stands in a JSON text, found after the fact: the text is parsed fast with the json
module, and only when a problem is reported is it walked again along that problem's path, skipping
every other value with the json module's own scanner."""

from __future__ import annotations

import json

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def position_of(text: str, path: tuple[str | int, ...]) -> int:
    """Offset of the value at `path` (keys and list indexes) in the valid JSON `text`; of its nearest
    ancestor when the path leaves the document."""
    offset = _skip_space(text, 0)
    for step in path:
        found = _child(text, offset, step)
        if found is None:
            return offset
        offset = found
    return offset


def _child(text: str, offset: int, step: str | int) -> int | None:
    opening = text[offset] if offset < len(text) else ""
    if opening == "{" and isinstance(step, str):
        return _member(text, offset, step)
    if opening == "[" and isinstance(step, int):
        return _element(text, offset, step)
    return None


def _member(text: str, offset: int, key: str) -> int | None:
    offset = _skip_space(text, offset + 1)
    while offset < len(text) and text[offset] != "}":
        name, offset = _DECODER.raw_decode(text, offset)
        offset = _skip_space(text, _skip_space(text, offset) + 1)  # past the colon
        if name == key:
            return offset
        offset = _after_value(text, offset)
    return None


def _element(text: str, offset: int, index: int) -> int | None:
    offset = _skip_space(text, offset + 1)
    position = 0
    while offset < len(text) and text[offset] != "]":
        if position == index:
            return offset
        offset = _after_value(text, offset)
        position += 1
    return None


def _after_value(text: str, offset: int) -> int:
    """Past the value at `offset` and the comma after it."""
    _, end = _DECODER.raw_decode(text, offset)
    end = _skip_space(text, end)
    if end < len(text) and text[end] == ",":
        end = _skip_space(text, end + 1)
    return end


def _skip_space(text: str, offset: int) -> int:
    while offset < len(text) and text[offset] in _WHITESPACE:
        offset += 1
    return offset
