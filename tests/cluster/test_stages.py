"""The kwok stage file shipped in the package: what kwok does to a simulated cluster's objects."""

from __future__ import annotations

import yaml

from mims.cluster.sim import STAGES, STORAGE_CLASS

KWOK_FAST = [
    "node-initialize",
    "node-heartbeat-with-lease",
    "pod-ready",
    "pod-complete",
    "pod-delete",
    "pvc-provision",
    "pv-bind",
    "pvc-delete",
    "pv-delete",
]


def stages() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(STAGES.read_text()) if doc is not None]


def by_name() -> dict[str, dict]:
    return {s["metadata"]["name"]: s for s in stages()}


def test_the_file_travels_in_the_package():
    assert STAGES.parent.name == "cluster" and STAGES.parent.joinpath("__init__.py").is_file()


def test_every_document_is_a_kwok_stage_with_a_unique_name():
    docs = stages()
    assert {(d["apiVersion"], d["kind"]) for d in docs} == {("kwok.x-k8s.io/v1alpha1", "Stage")}
    names = [d["metadata"]["name"] for d in docs]
    assert names == [*KWOK_FAST, "service-load-balancer", "ingress-address"]


def test_node_pod_and_volume_stages_act_on_their_kinds():
    kinds = {name: s["spec"]["resourceRef"]["kind"] for name, s in by_name().items()}
    assert {n for n, k in kinds.items() if k == "Node"} == {"node-initialize", "node-heartbeat-with-lease"}
    assert {n for n, k in kinds.items() if k == "Pod"} == {"pod-ready", "pod-complete", "pod-delete"}
    assert {n for n, k in kinds.items() if k in ("PersistentVolume", "PersistentVolumeClaim")} == {
        "pvc-provision",
        "pv-bind",
        "pvc-delete",
        "pv-delete",
    }


def test_volume_stages_provision_the_default_storage_class():
    assert STORAGE_CLASS["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert STORAGE_CLASS["volumeBindingMode"] == "Immediate"
    for name in ("pvc-provision", "pv-bind", "pvc-delete", "pv-delete"):
        expressions = [e["cel"]["expression"] for e in by_name()[name]["spec"]["selector"]["matchExpressions"]]
        assert f"self.spec.storageClassName == '{STORAGE_CLASS['metadata']['name']}'" in expressions


def test_load_balancer_services_and_ingresses_get_an_address_once():
    for name, group, kind in (
        ("service-load-balancer", "v1", "Service"),
        ("ingress-address", "networking.k8s.io/v1", "Ingress"),
    ):
        stage = by_name()[name]["spec"]
        assert stage["resourceRef"] == {"apiGroup": group, "kind": kind}
        expressions = [e["cel"]["expression"] for e in stage["selector"]["matchExpressions"]]
        assert "!has(self.status.loadBalancer.ingress)" in expressions  # never patches twice
        assert "!has(self.metadata.deletionTimestamp)" in expressions
        (step,) = stage["steps"]
        assert step["patch"]["subresource"] == "status"
        assert yaml.safe_load(step["patch"]["template"])["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1"
    service = by_name()["service-load-balancer"]["spec"]["selector"]["matchExpressions"]
    assert {"cel": {"expression": "self.spec.type == 'LoadBalancer'"}} in service
