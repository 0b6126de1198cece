"""The worked example of a chart of a city's own (docs/examples/stellio) deploys like the shipped
examples: `mims up` on a new simulated cluster creates every rendered object, the API server admits
the chart's pods under Pod Security `restricted`, and every workload becomes ready."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.conftest import REPO
from tests.engine.conftest import deploy

BLUEPRINT = REPO / "docs" / "examples" / "stellio" / "blueprint.yaml"


@pytest.mark.integration
def test_the_stellio_example_deploys_on_a_simulated_cluster(homes, toolchain):
    deployed = deploy(homes("stellio-example"), BLUEPRINT)
    try:
        expected = {s.layer.name: len(s.objects) for s in deployed.rendering.layers}
        assert {s["name"]: s["create"] for s in deployed.up.json()["stacks"]} == expected
        status = deployed.mims.ok("status", BLUEPRINT, "--json").json()
        assert status["ready"] is True, [w for w in status["workloads"] if not w["ok"]]

        apps = client.AppsV1Api(deployed.mims.api())
        namespace = f"{deployed.rendering.loaded.blueprint.city.name}-broker"
        ready = {
            d.metadata.name
            for d in apps.list_namespaced_deployment(namespace).items
            if d.status.available_replicas == d.spec.replicas
        } | {
            s.metadata.name
            for s in apps.list_namespaced_stateful_set(namespace).items
            if s.status.ready_replicas == s.spec.replicas
        }
        assert ready == {"api-gateway", "search-service", "subscription-service", "kafka", "broker-db"}
    finally:
        deployed.mims.stop()
