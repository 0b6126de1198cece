"""`open_deployment` and what every platform command does before the engine runs: the example
blueprints deploy, the foundation's Pod Security holds, the budget guard and the confirmation
guard stop a command before anything reaches a cluster."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.engine.conftest import SMALL_CITY, Deployed, Mims, blueprint_copy, example_names


@pytest.mark.integration
@pytest.mark.parametrize("example", example_names(), indirect=True)
def test_up_creates_every_rendered_object(example: Deployed):
    """`mims up` of each example on a new simulated cluster: every stack creates exactly the objects
    `mims render` shows for it, nothing else."""
    result = example.up.json()
    expected = {s.layer.name: len(s.objects) for s in example.rendering.layers}
    assert {s["name"]: s["create"] for s in result["stacks"]} == expected
    assert all(s["update"] == s["replace"] == s["delete"] == 0 for s in result["stacks"])
    assert result["changes"] == sum(expected.values())
    assert result["cluster"] == {"kind": "sim", "name": "mims"}


@pytest.mark.integration
def test_namespaces_refuse_pods_violating_restricted(small_city: Deployed):
    """Pod Security `restricted` is enforced in the platform's namespaces: a pod running as root with
    its capabilities and privilege escalation left open is refused with a 403."""
    core = client.CoreV1Api(small_city.mims.api())
    namespace = f"{small_city.rendering.loaded.blueprint.city.name}-broker"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "not-restricted"},
        "spec": {
            "containers": [
                {"name": "shell", "image": "busybox:1.37", "resources": {"limits": {"cpu": "10m", "memory": "16Mi"}}}
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        try:
            core.create_namespaced_pod(namespace, pod)
        finally:  # admitted after all: do not leave it in the shared deployment
            try:
                core.delete_namespaced_pod("not-restricted", namespace)
            except ApiException:
                pass
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refused.value.body)["message"]


@pytest.mark.parametrize("command", ["plan", "up"])
def test_budget_cap_stops_before_anything_is_deployed(command, homes, tmp_path):
    mims = Mims(homes("budget"))
    blueprint = blueprint_copy(tmp_path, replace=("  cap_eur: 50000", "  cap_eur: 1000"))
    run = mims.run(command, blueprint, *(["--yes"] if command == "up" else []))
    assert run.code == 5, run.describe()
    assert "budget.cap_eur (EUR 1,000)" in run.err and "--allow-over-budget" in run.err
    assert not (mims.home / "clusters" / "mims").exists()  # `up` did not even start the cluster
    assert not list((mims.home / "state").rglob("*.json"))  # and no stack was created


@pytest.mark.integration
def test_allow_over_budget_lets_plan_run(small_city: Deployed, tmp_path):
    blueprint = blueprint_copy(tmp_path, replace=("  cap_eur: 50000", "  cap_eur: 1000"))
    run = small_city.mims.run("plan", blueprint, "--allow-over-budget", "--json")
    assert run.code == 0, run.describe()
    assert run.json()["changes"] == 0  # the cap changes no object


@pytest.mark.parametrize("command", ["up", "destroy"])
def test_confirmation_needs_yes_without_a_terminal(command, homes):
    mims = Mims(homes("no-terminal"))
    run = mims.run(command, SMALL_CITY)
    assert run.code == 2, run.describe()
    assert "no terminal to confirm on; pass --yes" in run.err
    assert not (mims.home / "clusters").exists() and not (mims.home / "state").exists()


@pytest.mark.integration
def test_standard_city_gets_a_node_that_fits(standard_city: Deployed):
    """`mims up` sized the new simulated cluster for the standard profile's requests."""
    node = client.CoreV1Api(standard_city.mims.api()).read_node("kwok-node-0")
    assert (node.status.allocatable["cpu"], node.status.allocatable["memory"]) == ("8", "32Gi")
