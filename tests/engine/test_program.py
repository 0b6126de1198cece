"""The inline programs' building blocks, without a cluster: type tokens, resource names, retained
namespaces and the fingerprint that lets unchanged stacks be skipped."""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from pathlib import Path

import pytest

from mims.engine.program import StackProgram, Target, data_namespaces, resource_name, type_token

TARGET = Target(Path("/clusters/mims/kubeconfig"))


def _sdk_token(api_version: str, kind: str) -> str:
    """The type token the provider's own SDK class registers for a built-in kind."""
    group, _, version = api_version.rpartition("/")
    module = importlib.import_module(f"pulumi_kubernetes.{group.split('.')[0] or 'core'}.{version}.{kind}")
    return re.search(rf"'(kubernetes:[^']+:{kind})'", inspect.getsource(module))[1]


@pytest.mark.parametrize(
    ("api_version", "kind", "token"),
    [
        ("v1", "Namespace", "kubernetes:core/v1:Namespace"),
        ("v1", "Secret", "kubernetes:core/v1:Secret"),
        ("apps/v1", "Deployment", "kubernetes:apps/v1:Deployment"),
        ("apps/v1", "StatefulSet", "kubernetes:apps/v1:StatefulSet"),
        ("networking.k8s.io/v1", "NetworkPolicy", "kubernetes:networking.k8s.io/v1:NetworkPolicy"),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        ),
        # a kind a CRD defines: what pulumi_kubernetes.apiextensions.CustomResource registers
        ("cert-manager.io/v1", "ClusterIssuer", "kubernetes:cert-manager.io/v1:ClusterIssuer"),
    ],
)
def test_type_token(api_version, kind, token):
    assert type_token({"apiVersion": api_version, "kind": kind}) == token


def test_type_tokens_are_the_providers_own(rendered_examples):
    """Every built-in kind the examples render gets the token of the provider's SDK class, so the
    provider applies that kind's await logic and diff rules."""
    kinds = {(o["apiVersion"], o["kind"]) for r in rendered_examples.values() for o in r.objects()}
    custom = {(v, k) for v, k in kinds if v.split("/")[0] == "cert-manager.io"}
    assert custom, "the standard city renders cert-manager's ClusterIssuer"
    for api_version, kind in sorted(kinds - custom):
        assert type_token({"apiVersion": api_version, "kind": kind}) == _sdk_token(api_version, kind)


def test_resource_names_are_unique_over_the_examples(rendered_examples):
    for rendering in rendered_examples.values():
        names = [resource_name(o) for o in rendering.objects()]
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_resource_name_tells_kind_namespace_and_name():
    assert resource_name({"kind": "ConfigMap", "metadata": {"namespace": "a-b", "name": "c"}}) == "configmap-a-b-c"
    assert resource_name({"kind": "Namespace", "metadata": {"name": "a-b"}}) == "namespace-a-b"


def test_data_namespaces_are_those_of_statefulset_volume_claims(rendered_examples):
    assert data_namespaces(rendered_examples["small-city"].objects()) == {
        "alderbrook-broker",
        "alderbrook-catalogue",
        "alderbrook-iam",
        "alderbrook-ingestion",
        "alderbrook-monitoring",
    }
    without_claims = {"kind": "StatefulSet", "metadata": {"namespace": "x", "name": "s"}, "spec": {"replicas": 1}}
    with_claims = {
        "kind": "StatefulSet",
        "metadata": {"namespace": "y", "name": "s"},
        "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
    }
    deployment = {"kind": "Deployment", "metadata": {"namespace": "z", "name": "d"}, "spec": {}}
    assert data_namespaces([without_claims, with_claims, deployment]) == {"y"}


# -- the fingerprint -------------------------------------------------------------------------------


def _program(rendering, values: dict | None = None, **changes) -> StackProgram:
    objects = copy.deepcopy(next(s for s in rendering.layers if s.layer.name == "ingestion").objects)
    return StackProgram(
        objects,
        changes.get("target", TARGET),
        values if values is not None else {"ns/s": {"password": "one"}},
        changes.get("retained", {"alderbrook-ingestion"}),
    )


def test_fingerprint_is_stable(rendered_examples):
    small = rendered_examples["small-city"]
    assert _program(small).fingerprint() == _program(small).fingerprint()
    reordered = _program(small)
    reordered.objects = [dict(reversed(list(o.items()))) for o in reordered.objects]
    assert reordered.fingerprint() == _program(small).fingerprint()  # key order is no change


def test_fingerprint_changes_with_an_object(rendered_examples):
    small = rendered_examples["small-city"]
    changed = _program(small)
    deployment = next(o for o in changed.objects if o["kind"] == "Deployment")
    deployment["spec"]["replicas"] = 2
    assert changed.fingerprint() != _program(small).fingerprint()
    fewer = _program(small)
    fewer.objects.pop()
    assert fewer.fingerprint() != _program(small).fingerprint()


def test_fingerprint_changes_with_a_secret_value(rendered_examples):
    small = rendered_examples["small-city"]
    assert _program(small, {"ns/s": {"password": "two"}}).fingerprint() != _program(small).fingerprint()
    assert _program(small, {}).fingerprint() != _program(small).fingerprint()


def test_fingerprint_changes_with_the_cluster_and_retained_namespaces(rendered_examples):
    small = rendered_examples["small-city"]
    assert _program(small, target=Target(Path("/other/kubeconfig"))).fingerprint() != _program(small).fingerprint()
    assert _program(small, target=Target(TARGET.kubeconfig, "ctx")).fingerprint() != _program(small).fingerprint()
    assert _program(small, retained=set()).fingerprint() != _program(small).fingerprint()
