"""The places chart (pygeoapi): its configuration is valid for the pinned pygeoapi release, each
collection's file travels intact, and the pod starts anew when the configuration or a file changes."""

from __future__ import annotations

import base64
import gzip
import json
import os
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from mims.blueprint import load_blueprint
from mims.charts.render import Rendering
from tests.conftest import EXAMPLES, find

STANDARD = next(p for p in EXAMPLES if p.stem == "standard-city")
NAMESPACE = "riverton-places"
SCHEMA_IN_WHEEL = "pygeoapi/resources/schemas/config/pygeoapi-config-0.x.yml"


@pytest.fixture(scope="module")
def standard(rendered_examples) -> Rendering:
    return rendered_examples["standard-city"]


def config_of(rendering: Rendering) -> dict:
    return yaml.safe_load(find(rendering, "ConfigMap", "places-config", NAMESPACE)["data"]["config.yml"])


@pytest.fixture(scope="module")
def pygeoapi_config_schema() -> dict:
    """pygeoapi's own schema of its configuration, from the wheel of the release the chart pins
    (scripts/test downloads it; pygeoapi 0.23 needs Python 3.12, so it is read, not installed)."""
    wheel = os.environ.get("MIMS_PYGEOAPI_WHEEL")
    if not wheel or not Path(wheel).is_file():
        if os.environ.get("CI"):
            pytest.fail("MIMS_PYGEOAPI_WHEEL is not set; scripts/test downloads the wheel")
        pytest.skip("the pygeoapi wheel is not downloaded (scripts/test downloads it)")
    with zipfile.ZipFile(wheel) as archive:
        return yaml.safe_load(archive.read(SCHEMA_IN_WHEEL))


def test_the_configuration_is_valid_for_the_pinned_pygeoapi(standard, pygeoapi_config_schema):
    version = find(standard, "Deployment", "places", NAMESPACE)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert Path(os.environ["MIMS_PYGEOAPI_WHEEL"]).name.startswith(f"pygeoapi-{version.rsplit(':', 1)[1]}-")
    jsonschema.validate(config_of(standard), pygeoapi_config_schema)


def test_each_collection_is_configured_with_its_crs_extent_and_licence(standard):
    [(name, districts)] = config_of(standard)["resources"].items()
    assert name == "districts"
    assert districts["extents"]["spatial"]["bbox"] == [7.0, 50.98, 7.02, 51.02]
    assert districts["links"][0] | {"rel": "license"} == districts["links"][0]
    [provider] = districts["providers"]
    assert provider == {
        "type": "feature",
        "name": "GeoJSON",
        "data": "/data/districts.geojson",
        "id_field": "id",
        "storage_crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
    }


def test_the_collection_file_travels_intact_to_where_the_configuration_reads_it(standard):
    data = find(standard, "ConfigMap", "places-data-districts", NAMESPACE)["binaryData"]["districts.geojson.gz"]
    served = json.loads(gzip.decompress(base64.b64decode(data)))
    assert served == json.loads((STANDARD.parent / "places" / "districts.geojson").read_text())


def test_the_server_runs_restricted_on_a_read_only_root(standard):
    pod = find(standard, "Deployment", "places", NAMESPACE)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10701
    for container in pod["initContainers"] + pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["limits"]["memory"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["PYGEOAPI_OPENAPI"].startswith("/tmp/") and env["CONTAINER_PORT"] == "8080"


def test_a_changed_file_starts_new_pods(renderer, tmp_path):
    (tmp_path / "places").mkdir()
    text = (STANDARD.parent / "places" / "districts.geojson").read_text()
    (tmp_path / "places" / "districts.geojson").write_text(text)
    for data in ("algorithms", "contexts"):
        (tmp_path / data).symlink_to(STANDARD.parent / data)
    blueprint = tmp_path / "standard-city.yaml"
    blueprint.write_text(STANDARD.read_text())

    def config_annotation() -> str:
        rendering = renderer.render(load_blueprint(blueprint))
        return find(rendering, "Deployment", "places", NAMESPACE)["spec"]["template"]["metadata"]["annotations"][
            "mims.io/config"
        ]

    before = config_annotation()
    (tmp_path / "places" / "districts.geojson").write_text(text.replace('"North"', '"Northside"'))
    assert config_annotation() != before
