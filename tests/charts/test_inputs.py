"""Inputs charts read besides the blueprint: JSON-LD @context files and register entries."""

from __future__ import annotations

import json

import pytest

from mims.blueprint import load_blueprint
from mims.charts.inputs import contexts, register_inputs
from mims.errors import InvalidInput


def with_contexts(write_blueprint, tmp_path, files: dict[str, str]):
    folder = tmp_path / "contexts"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return load_blueprint(write_blueprint({"components": {"data_models": {"options": {"contexts_dir": "contexts"}}}}))


def test_register_vocabulary_is_always_served(write_blueprint):
    served = contexts(load_blueprint(write_blueprint({})))
    terms = json.loads(served["ats.jsonld"])["@context"]
    assert terms["Algorithm"] == "https://api.data.alderbrook.example/context/ats#Algorithm"
    assert "risk_category" in terms


def test_city_contexts_are_added(write_blueprint, tmp_path):
    loaded = with_contexts(write_blueprint, tmp_path, {"mobility.jsonld": '{"@context": {"a": "https://x/a"}}'})
    assert set(contexts(loaded)) == {"ats.jsonld", "mobility.jsonld"}


def test_invalid_json_context_names_line_and_column(write_blueprint, tmp_path):
    loaded = with_contexts(write_blueprint, tmp_path, {"bad.jsonld": '{\n  "@context": {,}\n}'})
    with pytest.raises(InvalidInput) as info:
        contexts(loaded)
    [problem] = info.value.problems
    assert (problem.line, problem.column) == (2, 16) and "invalid JSON" in problem.message


def test_context_document_needs_a_context_key(write_blueprint, tmp_path):
    loaded = with_contexts(write_blueprint, tmp_path, {"plain.jsonld": '{"a": 1}'})
    with pytest.raises(InvalidInput, match="top-level `@context`"):
        contexts(loaded)


def test_missing_contexts_folder_points_at_the_option(write_blueprint):
    path = write_blueprint({"components": {"data_models": {"options": {"contexts_dir": "nowhere"}}}})
    with pytest.raises(InvalidInput) as info:
        contexts(load_blueprint(path))
    assert info.value.problems[0].field == "components.data_models.options.contexts_dir"


def test_register_entities_are_ngsi_ld(write_blueprint):
    inputs = register_inputs(load_blueprint(write_blueprint({})))
    assert inputs["register"]["count"] == len(inputs["register_entities"]) > 0
    entity = inputs["register_entities"][0]
    assert entity["id"].startswith("urn:ngsi-ld:Algorithm:alderbrook-")
    assert entity["type"] == "Algorithm" and entity["name"]["type"] == "Property"
    assert entity["oversight_type"]["value"] in ("descriptive", "diagnostic", "predictive", "prescriptive")


def test_register_hash_follows_the_content(write_blueprint, tmp_path):
    first = register_inputs(load_blueprint(write_blueprint({})))["register_hash"]
    renamed = register_inputs(load_blueprint(write_blueprint({"city": {"name": "otherton"}})))["register_hash"]
    assert first != renamed
