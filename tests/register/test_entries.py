"""Register entries validate against the ATS v0.3.1 schema, with positioned, fixable errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mims.errors import InvalidInput
from mims.register.entries import load_entries, schema
from tests.conftest import FIXTURES, REPO

ENTRIES = FIXTURES / "entries"
FIELDS_TSV = REPO.parent / "shared" / "data" / "ats-v0.3.1-fields.tsv"


@pytest.mark.skipif(not FIELDS_TSV.exists(), reason="shared reference data is not beside this checkout")
def test_schema_matches_the_standard_field_list():
    rows = list(csv.reader(FIELDS_TSV.open(), delimiter="\t"))
    props = schema()["properties"]
    assert list(props) == [r[1] for r in rows]
    assert sorted(schema()["required"]) == sorted(r[1] for r in rows if r[0] == "REQ")
    for _flag, name, group, kind in rows:
        assert props[name]["x-group"] == group
        if kind.startswith("enum"):
            assert props[name]["enum"] == kind.split("enum=", 1)[1].split("/")


def test_schema_limits_from_the_standard():
    props = schema()["properties"]
    assert props["description_short"]["maxLength"] == 150
    assert (props["description"]["minLength"], props["description"]["maxLength"]) == (500, 10000)
    assert props["standard_version"]["const"] == "0.3.1"
    assert schema()["additionalProperties"] is False


def test_valid_entry_loads_with_slug_from_file_name():
    [entry] = load_entries(ENTRIES / "valid", ENTRIES)
    assert entry.slug == "parking-availability"
    assert entry.fields["publication_date"] == "2026-03-01"


def test_missing_folder_means_no_entries(tmp_path: Path):
    assert load_entries(tmp_path / "none", tmp_path) == []


def test_invalid_entries_report_every_problem_with_position():
    with pytest.raises(InvalidInput) as info:
        load_entries(ENTRIES / "invalid", ENTRIES)
    found = [str(p) for p in info.value.problems]
    assert found[0].startswith("invalid/Bad Name.yaml: file name must be a lowercase slug")
    text = "\n".join(found)
    assert "invalid/parking-availability.yaml:1:1: required field `goal` is missing" in text
    assert "invalid/parking-availability.yaml:2:7: lang: must be a two-letter ISO 639-1 code" in text
    assert (
        "invalid/parking-availability.yaml:3:1: algoritm_type: `algoritm_type` is not a field of the "
        "standard; did you mean `algorithm_type`?"
    ) in text
    assert "description_short: is 160 characters; at most 150 allowed" in text
    assert "risk_category: `limited` is not one of: minimal risk, limited risk, high risk, unacceptable" in text
