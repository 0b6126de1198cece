"""Static collections are checked before anything is rendered: every problem as file:line:column, in
the GeoJSON file or in the blueprint that declares it."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from mims.blueprint import load_blueprint
from mims.errors import InvalidInput
from mims.places.collections import CRS84, load_collections
from tests.conftest import FIXTURES

PLACES = FIXTURES / "places"


def declared(**changes) -> dict:
    collection = {
        "id": "districts",
        "title": "Districts",
        "description": "The city's districts and its town hall.",
        "licence": "CC-BY-4.0",
        "crs": 4326,
        "keywords": ["districts", "boundaries"],
        "file": "places/districts.geojson",
    }
    return {k: v for k, v in (collection | changes).items() if v is not None}


@pytest.fixture
def blueprint_with(write_blueprint, tmp_path: Path):
    """A small-city blueprint serving `collections`, with the fixture files beside it in places/."""
    shutil.copytree(PLACES, tmp_path / "places")

    def write(*collections: dict) -> Path:
        return write_blueprint(
            {"components": {"places": {"enabled": True, "options": {"collections": list(collections)}}}}
        )

    return write


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_collections(load_blueprint(path))
    return [str(p) for p in info.value.problems]


def line_of(path: Path, text: str, after: int = 0) -> int:
    """1-based number of the first line at or after line `after` that contains `text`."""
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if number > after and text in line)


def test_a_geojson_collection_is_read_with_its_extent_properties_and_geometry_types(blueprint_with):
    [collection] = load_collections(load_blueprint(blueprint_with(declared())))
    assert collection.features == 3
    assert collection.bbox_crs84 == (7.0, 50.98, 7.02, 51.02)
    assert collection.properties == ("name", "population")
    assert collection.geometry_types == ("Point", "Polygon")
    assert collection.storage_crs == CRS84
    packed = json.loads(gzip.decompress(collection.packed))
    assert packed == json.loads((PLACES / "districts.geojson").read_text())


def test_a_projected_collection_keeps_its_crs_and_reports_its_extent_in_longitude_latitude(blueprint_with):
    utm = declared(id="districts-utm", crs=25832, file="places/districts-utm32n.geojson")
    [collection] = load_collections(load_blueprint(blueprint_with(utm)))
    assert collection.storage_crs == "http://www.opengis.net/def/crs/EPSG/0/25832"
    west, south, east, north = collection.bbox_crs84  # the projected box's corners, so a little larger
    assert 6.99 < west <= 7.0 and 50.97 < south <= 50.98 and 7.02 <= east < 7.03 and 51.02 <= north < 51.03


def test_an_invalid_geometry_is_reported_at_its_line_and_column(blueprint_with):
    path = blueprint_with(declared(file="places/bowtie.geojson"))
    geojson = path.parent / "places" / "bowtie.geojson"
    line = line_of(geojson, '"geometry"', after=line_of(geojson, '"bowtie"'))
    column = geojson.read_text().splitlines()[line - 1].index("{") + 1
    assert problems_of(path) == [
        f"{geojson}:{line}:{column}: features[1].geometry: invalid Polygon: Self-intersection[7.01 51.01]"
    ]


def test_invalid_json_is_reported_where_the_parser_stopped(blueprint_with):
    path = blueprint_with(declared(file="places/broken.geojson"))
    geojson = path.parent / "places" / "broken.geojson"
    column = geojson.read_text().splitlines()[3].index(",,") + 2  # the second comma
    [problem] = problems_of(path)
    assert problem.startswith(f"{geojson}:4:{column}: invalid JSON: Expecting property name")


def test_coordinates_in_another_crs_than_the_declared_one_are_refused(blueprint_with):
    path = blueprint_with(declared(file="places/districts-utm32n.geojson"))  # declared 4326
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, 'crs: 4326')}:")
    assert "read as EPSG:4326 lies at 3" in problem and "outside where that CRS is used (World" in problem


def test_lon_lat_data_declared_as_utm_lies_outside_the_zone_and_is_refused(blueprint_with):
    path = blueprint_with(declared(crs=25832))
    [problem] = problems_of(path)
    assert "outside where that CRS is used (Europe between 6°E and 12°E" in problem


def test_an_unknown_epsg_code_is_refused(blueprint_with):
    path = blueprint_with(declared(crs=999999))
    line = line_of(path, "crs: 999999")
    column = path.read_text().splitlines()[line - 1].index("999999") + 1
    assert problems_of(path) == [
        f"{path}:{line}:{column}: components.places.options.collections[0].crs: "
        "EPSG:999999 is not in the EPSG registry; check the code"
    ]


def test_a_collection_without_crs_or_with_an_unknown_key_is_refused_by_the_blueprint(blueprint_with):
    path = blueprint_with(declared(crs=None, colour="red"))
    with pytest.raises(InvalidInput) as info:
        load_blueprint(path)
    messages = [str(p) for p in info.value.problems]
    assert any("collections[0]" in m and "crs" in m and "required" in m for m in messages), messages
    assert any(f":{line_of(path, 'colour: red')}:" in m and "colour" in m for m in messages), messages


def test_every_problem_of_every_collection_is_reported_at_once(blueprint_with):
    path = blueprint_with(declared(file="places/bowtie.geojson"), declared(id="missing", file="places/nowhere.geojson"))
    problems = problems_of(path)
    assert len(problems) == 2
    assert "Self-intersection" in problems[0] and "does not exist" in problems[1]


def test_places_enabled_without_a_collection_is_refused(write_blueprint):
    path = write_blueprint({"components": {"places": {"enabled": True}}})
    with pytest.raises(InvalidInput) as info:
        load_blueprint(path)
    assert "`places` is enabled but serves no collection" in str(info.value.problems[0])


def test_two_collections_with_one_id_are_refused(blueprint_with):
    with pytest.raises(InvalidInput) as info:
        load_blueprint(blueprint_with(declared(), declared(title="Again")))
    assert "collection id `districts` is used twice" in str(info.value.problems[0])
