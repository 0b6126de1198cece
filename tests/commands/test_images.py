"""`mims images`: a table by default, JSON for mirroring scripts, source and mirror side by side."""

from __future__ import annotations

import json

from mims.charts.mirror import mirrored
from tests.conftest import EXAMPLES

SMALL_CITY = next(p for p in EXAMPLES if p.name == "small-city.yaml")
MIRROR = "registry.city.example/mims"


def test_table_lists_each_image_with_its_component_and_use(cli):
    code, out, err = cli("images", SMALL_CITY)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("quay.io/keycloak/keycloak:"))
    assert row.split()[1:] == ["iam", "Deployment", "keycloak:", "copy-server", "(init)"]
    assert "Deployment keycloak: keycloak" in out and "mirrored" not in out
    assert err.strip().endswith(" images")


def test_json_lists_each_image_once_with_every_use(cli):
    code, out, _ = cli("images", SMALL_CITY, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mirror"] is None
    images = [entry["image"] for entry in data["images"]]
    assert images == sorted(set(images))
    mongo = next(e for e in data["images"] if e["image"] == "docker.io/library/mongo:8.0.26")
    assert mongo == {
        "image": "docker.io/library/mongo:8.0.26",
        "mirrored": None,
        "components": ["broker", "ingestion"],
        "used_by": [
            {
                "component": "broker",
                "namespace": "alderbrook-broker",
                "kind": "StatefulSet",
                "name": "broker-db",
                "container": "set-up",
                "init": True,
            },
            {
                "component": "broker",
                "namespace": "alderbrook-broker",
                "kind": "StatefulSet",
                "name": "broker-db",
                "container": "mongo",
                "init": False,
            },
            {
                "component": "ingestion",
                "namespace": "alderbrook-ingestion",
                "kind": "StatefulSet",
                "name": "ingestion-db",
                "container": "set-up",
                "init": True,
            },
            {
                "component": "ingestion",
                "namespace": "alderbrook-ingestion",
                "kind": "StatefulSet",
                "name": "ingestion-db",
                "container": "mongo",
                "init": False,
            },
        ],
    }


def test_with_a_mirror_each_source_is_paired_with_its_mirrored_reference(cli, write_blueprint):
    path = write_blueprint({"images": {"mirror": MIRROR}})
    _, out, _ = cli("images", path, "--json")
    data = json.loads(out)
    assert data["mirror"] == MIRROR
    assert all(e["mirrored"] == mirrored(e["image"], MIRROR) for e in data["images"])
    _, table, err = cli("images", path)
    assert table.split()[:2] == ["image", "mirrored"]
    assert f"{MIRROR}/keycloak/keycloak:26.8.2" in table and f", mirrored to {MIRROR}" in err
