"""Drift: objects deleted or changed by hand on a deployed city are noticed and put back, by a plain
`up` (deleted objects), by `--refresh` (changed ones), and reported by `status --drift` (exit 10)."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.engine.conftest import Deployed, blueprint_copy, deploy

pytestmark = pytest.mark.integration

REGISTER = ("alderbrook-ai-registry", "register")  # a Deployment of the small city
GRAFANA_CONFIG = ("alderbrook-monitoring", "grafana-config")  # a ConfigMap


@pytest.fixture(scope="module")
def drifting_city(homes, toolchain, tmp_path_factory) -> Deployed:
    """The small city in a home of its own: these tests change its objects behind mims's back."""
    deployed = deploy(homes("drifting-city"), blueprint_copy(tmp_path_factory.mktemp("drifting")))
    yield deployed
    deployed.mims.stop()


def test_plain_up_puts_back_a_deployment_deleted_by_hand(drifting_city: Deployed):
    mims, blueprint = drifting_city.mims, drifting_city.blueprint
    apps = client.AppsV1Api(mims.api())
    apps.delete_namespaced_deployment(REGISTER[1], REGISTER[0])

    plan = mims.run("plan", blueprint, "--detailed-exitcode", "--json")
    assert plan.code == 2, plan.describe()
    assert {s["name"]: s["create"] for s in plan.json()["stacks"] if s["create"]} == {"ai-registry": 1}
    assert plan.json()["drift"] == [
        {"stack": "ai-registry", "object": "Deployment alderbrook-ai-registry/register", "by_hand": "deleted"}
    ]

    up = mims.ok("up", blueprint, "--yes", "--json").json()
    assert up["changes"] == 1
    assert apps.read_namespaced_deployment(REGISTER[1], REGISTER[0]).metadata.name == REGISTER[1]
    assert mims.ok("up", blueprint, "--yes", "--json").json()["changes"] == 0


def test_refresh_shows_objects_changed_by_hand_and_puts_them_back(drifting_city: Deployed):
    mims, blueprint = drifting_city.mims, drifting_city.blueprint
    api = mims.api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    rendered_ini = core.read_namespaced_config_map(GRAFANA_CONFIG[1], GRAFANA_CONFIG[0]).data["grafana.ini"]
    image = apps.read_namespaced_deployment(REGISTER[1], REGISTER[0]).spec.template.spec.containers[0].image
    core.patch_namespaced_config_map(*reversed(GRAFANA_CONFIG), {"data": {"grafana.ini": "[server]\n"}})
    apps.patch_namespaced_deployment(
        *reversed(REGISTER),
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "example.org/other:1"}]}}}},
        field_manager="kubectl-set",
    )

    assert mims.run("plan", blueprint, "--detailed-exitcode").code == 0  # edits are not seen without --refresh
    plan = mims.run("plan", blueprint, "--refresh", "--detailed-exitcode", "--json")
    assert plan.code == 2, plan.describe()
    assert {(d["object"], d["by_hand"]) for d in plan.json()["drift"]} == {
        ("ConfigMap alderbrook-monitoring/grafana-config", "changed"),
        ("Deployment alderbrook-ai-registry/register", "changed"),
    }

    mims.ok("up", blueprint, "--refresh", "--yes")
    assert core.read_namespaced_config_map(GRAFANA_CONFIG[1], GRAFANA_CONFIG[0]).data["grafana.ini"] == rendered_ini
    assert apps.read_namespaced_deployment(REGISTER[1], REGISTER[0]).spec.template.spec.containers[0].image == image


def test_status_drift_exits_10_naming_what_was_deleted(drifting_city: Deployed):
    mims, blueprint = drifting_city.mims, drifting_city.blueprint
    assert mims.run("status", blueprint, "--drift").code == 0
    client.CoreV1Api(mims.api()).delete_namespaced_service("register", "alderbrook-ai-registry")

    status = mims.run("status", blueprint, "--drift", "--json")
    assert status.code == 10, status.describe()
    assert status.json()["drift"]["by_hand"] == [
        {"stack": "ai-registry", "object": "Service alderbrook-ai-registry/register", "what": "deleted"}
    ]
    assert "the cluster does not match" in status.err and "--refresh" in status.err
    mims.ok("up", blueprint, "--yes")
    assert mims.run("status", blueprint, "--drift").code == 0
