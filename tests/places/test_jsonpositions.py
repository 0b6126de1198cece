"""Offsets of values in JSON text, found along a path after the text was parsed."""

from __future__ import annotations

import pytest

from mims.places.jsonpositions import position_of

TEXT = '{"a": 1, "list": [ {"x": "s,]}"}, [2, 3], {"x": {"deep": true}} ], "z" : null}'


@pytest.mark.parametrize(
    "path, value",
    [
        ((), "{"),
        (("a",), "1"),
        (("list", 1), "[2, 3]"),
        (("list", 2, "x", "deep"), "true"),
        (("z",), "null"),
        (("list", 0, "x"), '"s,]}"'),  # strings holding brackets and commas are skipped whole
    ],
)
def test_a_path_leads_to_where_its_value_starts(path, value):
    assert TEXT[position_of(TEXT, path) :].startswith(value)


def test_a_path_that_leaves_the_document_stops_at_the_nearest_ancestor():
    assert TEXT[position_of(TEXT, ("list", 7, "x")) :].startswith('[ {"x"')
    assert TEXT[position_of(TEXT, ("a", "b")) :].startswith("1")
