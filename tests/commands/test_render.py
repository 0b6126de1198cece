"""`mims render`: one folder per layer, one file per object, a summary, safe replacement."""

from __future__ import annotations

import json

import yaml

from tests.conftest import EXAMPLES

SMALL_CITY = next(p for p in EXAMPLES if p.name == "small-city.yaml")


def test_render_writes_one_file_per_object_per_layer(cli, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = cli("render", SMALL_CITY, "-o", out_dir, "--json")
    assert code == 0
    summary = json.loads(out)
    files = sorted(out_dir.glob("*/*.yaml"))
    assert len(files) == summary["objects"]
    assert {f.parent.name for f in files} <= {s["name"] for s in summary["layers"]}
    for f in files:
        obj = yaml.safe_load(f.read_text())
        assert obj["kind"] and obj["metadata"]["name"]


def test_render_summary_totals_per_component(cli, tmp_path):
    _, out, _ = cli("render", SMALL_CITY, "-o", tmp_path / "out", "--json")
    summary = json.loads(out)
    components = summary["components"]
    assert set(components) >= {"iam", "broker", "gateway", "monitoring"}
    total_cpu = sum(c["requests"]["cpu"] for c in components.values())
    assert abs(summary["total"]["requests"]["cpu"] - total_cpu) < 1e-9
    assert all(c["objects"] > 0 for c in components.values())


def test_render_replaces_its_own_output(cli, tmp_path):
    out_dir = tmp_path / "out"
    cli("render", SMALL_CITY, "-o", out_dir)
    stale = out_dir / "foundation" / "999-stale.yaml"
    stale.write_text("kind: Stale\n")
    assert cli("render", SMALL_CITY, "-o", out_dir)[0] == 0
    assert not stale.exists()


def test_render_refuses_a_folder_it_did_not_write(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = cli("render", SMALL_CITY, "-o", tmp_path)
    assert code == 2 and "was not written by `mims render`" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_rendered_files_hold_no_secret_data(cli, tmp_path):
    out_dir = tmp_path / "out"
    cli("render", SMALL_CITY, "-o", out_dir)
    for f in out_dir.glob("*/*secret*.yaml"):
        obj = yaml.safe_load(f.read_text())
        assert obj["kind"] != "Secret" or not ({"data", "stringData"} & set(obj))


def test_schema_prints_the_checked_in_schema(cli):
    from tests.conftest import REPO

    code, out, _ = cli("schema")
    assert code == 0 and out == (REPO / "blueprints" / "blueprint.schema.json").read_text()
