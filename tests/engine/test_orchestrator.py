"""The engine's operations on a deployed city: a no-op `up`, `plan` of a one-line change, a
component switched off, `destroy` with and without `--purge-data`, generated values kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tests.conftest import find
from tests.engine.conftest import (
    MANAGED,
    SMALL_CITY,
    Deployed,
    blueprint_copy,
    deploy,
    list_objects,
    live_image,
    statefulset_patch,
    with_image,
)

from mims.engine.program import data_namespaces, holds_backups, resource_name

pytestmark = pytest.mark.integration

# One line of the small city whose effect is exactly one object: Prometheus's ConfigMap.
RETENTION = ("  monitoring: {enabled: true}", "  monitoring: {enabled: true, options: {retention_days: 30}}")
RETENTION_OBJECT = ("monitoring", "configmap-alderbrook-monitoring-prometheus-config")
AI_REGISTRY_OFF = {"components": {"ai_registry": {"enabled": False}}}


def changed(result: dict) -> dict[str, int]:
    """Stack -> number of changes, for the stacks with any."""
    return {s["name"]: n for s in result["stacks"] if (n := s["create"] + s["update"] + s["replace"] + s["delete"])}


def progress(run, verb: str) -> set[tuple[str, str]]:
    """(stack, resource name) of every `<stack>: <verb> <Kind> <name>` progress line."""
    return {(m[1], m[2]) for m in re.finditer(rf"^(\S+): {verb} \S+ (\S+)$", run.err, re.MULTILINE)}


# -- on the shared small city (read only) ----------------------------------------------------------


def test_second_up_changes_nothing(small_city: Deployed):
    result = small_city.mims.ok("up", small_city.blueprint, "--yes", "--json").json()
    assert result["changes"] == 0
    assert {s["name"]: s["same"] for s in result["stacks"]} == {
        s.layer.name: len(s.objects) for s in small_city.rendering.layers
    }


def test_plan_shows_exactly_the_changed_object(small_city: Deployed, tmp_path):
    blueprint = blueprint_copy(tmp_path, replace=RETENTION)
    lines = small_city.mims.ok("plan", blueprint)
    will = [line for line in lines.err.splitlines() if ": will " in line]
    assert (
        len(will) == 1
        and will[0].startswith("monitoring: will ")
        and will[0].endswith(f"ConfigMap {RETENTION_OBJECT[1]}")
    ), lines.err
    assert lines.out.rstrip().endswith("\n1 change")
    result = small_city.mims.ok("plan", blueprint, "--json").json()
    assert changed(result) == {"monitoring": 1}
    assert result["changes"] == 1


def test_plan_detailed_exitcode(small_city: Deployed, tmp_path):
    blueprint = blueprint_copy(tmp_path, replace=RETENTION)
    assert small_city.mims.run("plan", blueprint, "--json", "--detailed-exitcode").code == 2
    unchanged = small_city.mims.run("plan", small_city.blueprint, "--json", "--detailed-exitcode")
    assert unchanged.code == 0, unchanged.describe()
    assert unchanged.json()["changes"] == 0


def test_plan_markdown_has_the_table(small_city: Deployed, tmp_path):
    blueprint = blueprint_copy(tmp_path, replace=RETENTION)
    markdown = small_city.mims.ok("plan", blueprint, "--markdown").out
    assert "### mims plan: `alderbrook-prod`" in markdown and "1 change\n" in markdown
    assert "| stack | create | update | replace | delete | unchanged |\n|---|---:|---:|---:|---:|---:|\n" in markdown
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    assert set(rows) - {"stack"} == {s.layer.name for s in small_city.rendering.layers}
    cells = [int(c) for c in rows["monitoring"].strip("| ").split(" | ")[1:]]
    [monitoring] = [s for s in small_city.rendering.layers if s.layer.name == "monitoring"]
    assert sum(cells[:4]) == 1 and cells[4] == len(monitoring.objects) - 1


def test_generated_values_are_stable(small_city: Deployed):
    """A second `up` reuses every generated value: the Secrets' data is unchanged."""
    small_city.mims.ok("up", small_city.blueprint, "--yes", "--json")
    assert small_city.mims.generated_values() == small_city.values
    # and the values are real: every key generated, none empty
    assert small_city.values and all(all(v) for v in small_city.values.values())


# -- on a city of their own, in this order: switch a component off, destroy, purge -----------------


@pytest.fixture(scope="module")
def changing_city(homes, toolchain) -> Deployed:
    deployed = deploy(homes("changing-city"), SMALL_CITY)
    yield deployed
    deployed.mims.stop()


def rendered_keys(mims, blueprint: Path, folder: Path) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, name) -> stack of every object `mims render` writes for the blueprint."""
    mims.ok("render", blueprint, "-o", folder)
    found = {}
    for file in folder.glob("*/*.yaml"):
        obj = yaml.safe_load(file.read_text())
        found[(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = file.parent.name
    return found


def test_a_database_image_change_deploys_and_says_why_no_backup_came_first(changing_city: Deployed, tmp_path):
    mims, iam = changing_city.mims, "alderbrook-iam"
    minor = statefulset_patch(changing_city, "keycloak-db", iam, with_image("docker.io/library/postgres:18.2-alpine"))
    run = mims.ok("up", blueprint_copy(tmp_path / "minor", patch=minor), "--yes")
    assert "no backup before the image change of keycloak-db: the simulated cluster runs no containers" in run.err
    assert live_image(changing_city, "keycloak-db", iam) == "docker.io/library/postgres:18.2-alpine"


def test_a_new_major_version_deploys_when_allowed(changing_city: Deployed, tmp_path):
    mims, iam = changing_city.mims, "alderbrook-iam"
    major = statefulset_patch(changing_city, "keycloak-db", iam, with_image("docker.io/library/postgres:19.0-alpine"))
    mims.ok("up", blueprint_copy(tmp_path / "major", patch=major), "--yes", "--allow-data-change")
    assert live_image(changing_city, "keycloak-db", iam) == "docker.io/library/postgres:19.0-alpine"
    mims.ok("up", changing_city.blueprint, "--yes", "--allow-data-change")  # back to the blueprint's version
    rendered = find(changing_city.rendering, "StatefulSet", "keycloak-db", iam)
    assert (
        live_image(changing_city, "keycloak-db", iam) == rendered["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def test_switching_a_component_off_deletes_exactly_its_objects(changing_city: Deployed, tmp_path):
    mims = changing_city.mims
    off = blueprint_copy(tmp_path / "off", patch=AI_REGISTRY_OFF)
    before_render = rendered_keys(mims, changing_city.blueprint, tmp_path / "before")
    after_render = rendered_keys(mims, off, tmp_path / "after")
    disappearing = set(before_render) - set(after_render)
    assert (
        any(k[0] == "Deployment" for k in disappearing) and ("Namespace", "", "alderbrook-ai-registry") in disappearing
    )

    api = mims.api()
    kinds = {k[0] for k in before_render}
    on_cluster = list_objects(api, MANAGED, kinds)
    assert on_cluster == set(before_render)

    up = mims.ok("up", off, "--yes", "--json")
    changing_city.blueprint = off
    deleted = progress(up, "deleted")
    assert deleted == {
        (before_render[k], resource_name({"kind": k[0], "metadata": {"namespace": k[1], "name": k[2]}}))
        for k in disappearing
    }
    assert up.json()["stacks"] and sum(s["delete"] for s in up.json()["stacks"]) == len(disappearing)
    assert list_objects(api, MANAGED, kinds) == set(after_render)


def backup_claims(deployed: Deployed) -> set[tuple[str, str, str]]:
    return {
        ("PersistentVolumeClaim", o["metadata"]["namespace"], o["metadata"]["name"])
        for o in deployed.rendering.objects()
        if holds_backups(o)
    }


def test_destroy_keeps_only_volume_claims_and_their_namespaces(changing_city: Deployed):
    mims = changing_city.mims
    mims.ok("destroy", changing_city.blueprint, "--yes")
    api = mims.api()
    kept = data_namespaces(changing_city.rendering.objects())
    assert kept == {
        "alderbrook-broker",
        "alderbrook-catalogue",
        "alderbrook-iam",
        "alderbrook-ingestion",
        "alderbrook-monitoring",
    }
    backups = backup_claims(changing_city)
    assert {ns for _, ns, _ in backups} == {"alderbrook-catalogue", "alderbrook-iam"}
    assert list_objects(api, MANAGED) == {("Namespace", "", ns) for ns in kept} | backups
    claims = client.CoreV1Api(api).list_persistent_volume_claim_for_all_namespaces().items
    expected = {
        (o["metadata"]["namespace"], f"{t['metadata']['name']}-{o['metadata']['name']}-{i}")
        for o in changing_city.rendering.objects()
        if o["kind"] == "StatefulSet"
        for t in o["spec"].get("volumeClaimTemplates", [])
        for i in range(o["spec"].get("replicas", 1))
    }
    assert {(c.metadata.namespace, c.metadata.name) for c in claims} == expected | {(ns, n) for _, ns, n in backups}
    assert all(c.status.phase == "Bound" for c in claims)
    status = mims.ok("status", changing_city.blueprint, "--json").json()
    assert not any(s["exists"] for s in status["stacks"]) and status["ready"] is False


def test_destroy_purge_data_keeps_the_backup_volumes(changing_city: Deployed):
    mims = changing_city.mims
    run = mims.ok("destroy", changing_city.blueprint, "--yes", "--purge-data")
    api = mims.api()
    backups = backup_claims(changing_city)
    assert list_objects(api, MANAGED) == {("Namespace", "", ns) for _, ns, _ in backups} | backups
    core = client.CoreV1Api(api)
    claims = core.list_persistent_volume_claim_for_all_namespaces().items
    assert {(c.metadata.namespace, c.metadata.name) for c in claims} == {(ns, n) for _, ns, n in backups}
    assert {pv.metadata.name for pv in core.list_persistent_volume().items} == {c.spec.volume_name for c in claims}
    assert "kept: the backup volumes in alderbrook-catalogue, alderbrook-iam" in run.out
    assert not list((mims.home / "state" / ".pulumi" / "stacks").glob("*/alderbrook-prod.json"))


def test_purge_backups_goes_only_with_purge_data(changing_city: Deployed):
    run = changing_city.mims.run("destroy", changing_city.blueprint, "--yes", "--purge-backups")
    assert run.code == 2 and "--purge-backups goes with --purge-data" in run.err


def test_destroy_purge_backups_removes_everything(changing_city: Deployed):
    mims = changing_city.mims
    run = mims.ok("destroy", changing_city.blueprint, "--yes", "--purge-data", "--purge-backups")
    api = mims.api()
    assert list_objects(api, MANAGED) == set()
    core = client.CoreV1Api(api)
    assert core.list_persistent_volume_claim_for_all_namespaces().items == []
    assert core.list_persistent_volume().items == []  # purge waits for the volumes, too
    assert "kept:" not in run.out
