"""The JSON Schema and Markdown reference are generated from the model and must not go stale."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from mims.blueprint.schema import json_schema_text, markdown_reference
from tests.conftest import EXAMPLES, REPO


def test_json_schema_file_is_current():
    assert (REPO / "blueprints" / "blueprint.schema.json").read_text() == json_schema_text(), (
        "regenerate: mims schema -o blueprints/blueprint.schema.json"
    )


def test_markdown_reference_is_current():
    assert (REPO / "docs" / "blueprint-reference.md").read_text() == markdown_reference(), (
        "regenerate: mims schema --markdown -o docs/blueprint-reference.md"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_json_schema(example):
    jsonschema.validate(yaml.safe_load(example.read_text()), json.loads(json_schema_text()))
