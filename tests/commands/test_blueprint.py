"""`mims init` and `mims validate` as a user meets them."""

from __future__ import annotations

import json

from tests.conftest import EXAMPLES, FIXTURES

SMALL_CITY = next(p for p in EXAMPLES if p.name == "small-city.yaml")


def test_validate_accepts_the_example(cli):
    code, out, err = cli("validate", SMALL_CITY)
    assert code == 0 and "valid" in out and err == ""


def test_validate_json_goes_to_stdout(cli):
    code, out, _ = cli("validate", SMALL_CITY, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["valid"] is True and report["objects"] > 50


def test_validate_reports_problems_on_stderr_without_traceback(cli):
    code, out, err = cli("validate", FIXTURES / "blueprints" / "many-problems.yaml")
    assert code == 1 and out == ""
    assert "many-problems.yaml:12:21: components.broker.implementation:" in err
    assert "7 problems found" in err and "Traceback" not in err


def test_validate_json_lists_problems_on_stdout(cli):
    code, out, _ = cli("validate", FIXTURES / "blueprints" / "typo-key.yaml", "--json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert report["problems"][1] == {
        "file": str(FIXTURES / "blueprints" / "typo-key.yaml"),
        "line": 4,
        "column": 3,
        "field": "city.display_nme",
        "message": "unknown key `display_nme`; did you mean `display_name`?",
    }


def test_init_writes_a_blueprint_that_validates(cli, tmp_path):
    target = tmp_path / "city.yaml"
    code, _, err = cli(
        "init",
        target,
        "--city",
        "riverton",
        "--display-name",
        "Riverton",
        "--country",
        "DE",
        "--domain",
        "data.riverton.example",
        "--broker",
        "scorpio",
    )
    assert code == 0, err
    assert "implementation: scorpio" in target.read_text()
    assert (tmp_path / "algorithms").is_dir()
    assert cli("validate", target)[0] == 0


def test_init_without_a_terminal_names_the_missing_flags(cli, tmp_path):
    code, _, err = cli("init", tmp_path / "city.yaml", "--city", "riverton")
    assert code == 2
    assert "missing --display-name, --country, --domain (no terminal to ask on)" in err


def test_init_checks_answers_with_the_blueprint_rules(cli, tmp_path):
    code, _, err = cli(
        "init",
        tmp_path / "city.yaml",
        "--city",
        "River Town",
        "--display-name",
        "R",
        "--country",
        "DE",
        "--domain",
        "data.riverton.example",
    )
    assert code == 1 and "city.name: must be a DNS label" in err
    assert not (tmp_path / "city.yaml").exists()


def test_init_does_not_overwrite_without_force(cli, tmp_path):
    target = tmp_path / "city.yaml"
    target.write_text("keep me")
    code, _, err = cli(
        "init",
        target,
        "--city",
        "riverton",
        "--display-name",
        "Riverton",
        "--country",
        "DE",
        "--domain",
        "data.riverton.example",
    )
    assert code == 2 and "pass --force" in err and target.read_text() == "keep me"


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("mims ")
