"""The YAML reader keeps positions and turns every failure into a located problem."""

from __future__ import annotations

import pytest

from mims.errors import InvalidInput
from mims.yamlsource import parse_yaml


def test_positions_of_keys_and_values():
    doc = parse_yaml("a:\n  b: [1, 2]\n  c: x\n", "f.yaml")
    assert doc.data == {"a": {"b": [1, 2], "c": "x"}}
    assert doc.position(("a", "c"), key=True) == (3, 3)
    assert doc.position(("a", "c")) == (3, 6)
    assert doc.position(("a", "b", 1)) == (2, 10)


def test_missing_path_falls_back_to_nearest_ancestor():
    doc = parse_yaml("a:\n  b: 1\n", "f.yaml")
    assert doc.position(("a", "zzz", 3)) == (2, 3)


def test_dates_become_iso_strings():
    assert parse_yaml("d: 2026-03-01\n", "f.yaml").data == {"d": "2026-03-01"}


def test_alias_bomb_is_refused():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        levels.append(f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]")
    with pytest.raises(InvalidInput, match="too many nodes"):
        parse_yaml("\n".join(levels) + "\n", "bomb.yaml")


def test_several_documents_are_refused():
    with pytest.raises(InvalidInput, match="several YAML documents"):
        parse_yaml("a: 1\n---\nb: 2\n", "f.yaml")


def test_tabs_are_invalid_yaml_with_position():
    with pytest.raises(InvalidInput) as info:
        parse_yaml("a:\n\tb: 1\n", "f.yaml")
    assert info.value.problems[0].line == 2
