"""Readiness of a deployed example as the API server reports it, read directly and through
`mims status --json`."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.engine.conftest import MANAGED, Deployed, example_names

from mims.engine.program import holds_backups

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("example", example_names(), indirect=True)
def test_workloads_are_available_and_claims_bound(example: Deployed):
    api = example.mims.api()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    rendered = example.rendering.objects()
    namespaces = {o["metadata"]["name"] for o in rendered if o["kind"] == "Namespace"}

    deployments = apps.list_deployment_for_all_namespaces(label_selector=MANAGED).items
    assert {(d.metadata.namespace, d.metadata.name) for d in deployments} == {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in rendered if o["kind"] == "Deployment"
    }
    for d in deployments:
        assert d.status.available_replicas == d.spec.replicas, f"Deployment {d.metadata.name}: {d.status}"

    statefulsets = apps.list_stateful_set_for_all_namespaces(label_selector=MANAGED).items
    assert len(statefulsets) == sum(o["kind"] == "StatefulSet" for o in rendered) > 0
    for s in statefulsets:
        assert s.status.ready_replicas == s.status.available_replicas == s.spec.replicas, (
            f"StatefulSet {s.metadata.name}: {s.status}"
        )

    claims = [
        c for c in core.list_persistent_volume_claim_for_all_namespaces().items if c.metadata.namespace in namespaces
    ]
    expected = {
        (s.metadata.namespace, f"{t.metadata.name}-{s.metadata.name}-{i}")
        for s in statefulsets
        for t in s.spec.volume_claim_templates or []
        for i in range(s.spec.replicas)
    }
    expected |= {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in rendered if holds_backups(o)}
    assert {(c.metadata.namespace, c.metadata.name) for c in claims} == expected
    assert {c.metadata.name: c.status.phase for c in claims} == {name: "Bound" for _, name in expected}


@pytest.mark.parametrize("example", example_names(), indirect=True)
def test_every_namespace_enforces_restricted(example: Deployed):
    core = client.CoreV1Api(example.mims.api())
    namespaces = core.list_namespace(label_selector=MANAGED).items
    assert {n.metadata.name for n in namespaces} == {
        o["metadata"]["name"] for o in example.rendering.objects() if o["kind"] == "Namespace"
    }
    for namespace in namespaces:
        assert namespace.metadata.labels.get("pod-security.kubernetes.io/enforce") == "restricted", (
            namespace.metadata.name
        )


@pytest.mark.parametrize("example", example_names(), indirect=True)
def test_status_json_says_ready(example: Deployed):
    status = example.mims.ok("status", example.blueprint, "--json").json()
    assert status["ready"] is True, [w for w in status["workloads"] if not w["ok"]]
    expected = {s.layer.name: len(s.objects) for s in example.rendering.layers}
    # a layer with objects has run and succeeded; an empty one that never ran was never created
    assert all((s["exists"] and s["result"] == "succeeded") == bool(expected[s["name"]]) for s in status["stacks"]), (
        status["stacks"]
    )
    assert {s["name"]: s["resources"] for s in status["stacks"]} == expected
    kinds = {w["kind"] for w in status["workloads"]}
    assert {"Deployment", "StatefulSet", "PersistentVolumeClaim"} <= kinds
