"""Blueprint loading: every problem at once, as file:line:column: field.path: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mims.blueprint import load_blueprint
from mims.errors import InvalidInput
from tests.conftest import EXAMPLES, FIXTURES

BAD = FIXTURES / "blueprints"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_blueprint(path)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_load(example):
    assert load_blueprint(example).blueprint.city.name


def test_unknown_key_suggests_the_right_one():
    assert problems_of(BAD / "typo-key.yaml") == [
        f"{BAD / 'typo-key.yaml'}:2:1: city: required key `display_name` is missing",
        f"{BAD / 'typo-key.yaml'}:4:3: city.display_nme: unknown key `display_nme`; did you mean `display_name`?",
    ]


def test_all_problems_reported_at_once_in_file_order():
    found = problems_of(BAD / "many-problems.yaml")
    fields = [p.split(": ", 2)[1] for p in found]
    assert fields == [
        "city.name",
        "city.country",
        "domain",
        "budget.profile",
        "budget.cap_eur",
        "components.broker.implementation",
        "components.gatway",
    ]
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)


def test_unknown_implementation_lists_choices_and_guesses():
    found = problems_of(BAD / "many-problems.yaml")
    broker = next(p for p in found if "components.broker.implementation" in p)
    assert ":12:21:" in broker
    assert "available: `orion-ld`, `scorpio`" in broker and "did you mean `orion-ld`?" in broker


def test_value_out_of_range_names_the_bound():
    found = problems_of(BAD / "many-problems.yaml")
    assert any("budget.cap_eur: input should be greater than 0 (got -5)" in p for p in found)


def test_pattern_errors_explain_the_rule():
    found = problems_of(BAD / "many-problems.yaml")
    assert any("city.name: must be a DNS label" in p for p in found)
    assert any("city.country: must be an ISO 3166-1 alpha-2 country code" in p for p in found)


def test_duplicate_key_is_an_error_with_position():
    [problem] = problems_of(BAD / "duplicate-key.yaml")
    assert ":6:3:" in problem and "duplicate key" in problem


def test_invalid_yaml_names_line():
    [problem] = problems_of(BAD / "invalid-yaml.yaml")
    assert problem.startswith(f"{BAD / 'invalid-yaml.yaml'}:4:") and "invalid YAML" in problem


def test_empty_file():
    assert problems_of(BAD / "empty.yaml") == [f"{BAD / 'empty.yaml'}: file is empty; expected a YAML mapping"]


def test_missing_file():
    assert problems_of(BAD / "nope.yaml") == [f"{BAD / 'nope.yaml'}: file not found; check the path"]


def test_top_level_must_be_a_mapping():
    [problem] = problems_of(BAD / "list-top.yaml")
    assert "expected a mapping at the top level, got a list" in problem


def test_wrong_types_name_the_type_given():
    found = problems_of(BAD / "wrong-types.yaml")
    assert any("components.iam:" in p and "(got 'yes please')" in p for p in found)
    assert any("components.ingestion.options.device_users: input should be a valid list" in p for p in found)


def test_component_dependency_is_checked():
    [problem] = problems_of(BAD / "gateway-without-iam.yaml")
    assert "components.gateway.enabled" in problem or "components.iam" in problem
    assert "`gateway` needs `iam` enabled" in problem


def test_one_of_rule_on_cluster_target():
    [problem] = problems_of(BAD / "context-without-name.yaml")
    assert ":5:3: cluster:" in problem and "needs `context:" in problem


def test_device_users_may_not_take_names_mims_uses(write_blueprint):
    path = write_blueprint({"components": {"ingestion": {"options": {"device_users": ["parking", "passwd"]}}}})
    [problem] = problems_of(path)
    assert "components.ingestion.options.device_users: `passwd` is used by mims itself" in problem


@pytest.mark.parametrize(
    "mirror",
    [
        "https://registry.city.example/mims",
        "registry.city.example/mims:8.0",
        "registry.city.example/mims@sha256:" + "0" * 64,
        "registry.city.example/",
        "mirror/mims",
        "Registry.City.example",
    ],
)
def test_image_mirror_must_be_a_registry_host_and_path(write_blueprint, mirror):
    example = next(p for p in EXAMPLES if p.name == "small-city.yaml").read_text()
    path = write_blueprint(example + f'images:\n  mirror: "{mirror}"\n')
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{path}:{len(example.splitlines()) + 2}:11: images.mirror: must be a registry "
        "host with an optional port and path, such as `registry.city.example/mims`"
    )


@pytest.mark.parametrize("mirror", ["registry.city.example/mims", "localhost:5000", "10.0.0.5:5000/city/prod"])
def test_image_mirror_accepts_a_host_with_port_and_path(write_blueprint, mirror):
    assert load_blueprint(write_blueprint({"images": {"mirror": mirror}})).blueprint.images.mirror == mirror


def test_a_control_character_in_a_display_name_is_refused_where_it_stands(write_blueprint):
    path = write_blueprint({"city": {"display_name": "Alder\x7fbrook"}})
    with pytest.raises(InvalidInput) as raised:
        load_blueprint(path)
    [problem] = raised.value.problems
    assert problem.field == "city.display_name" and problem.line is not None
