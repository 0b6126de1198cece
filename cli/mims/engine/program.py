"""The inline Pulumi programs: every rendered object becomes one resource of the real Kubernetes
provider, so Pulumi diffs, awaits and deletes exactly what `mims render` shows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from mims import __version__
from mims.charts.footprint import BACKUPS_LABEL
from mims.secrets import is_generated

k8s_version = version("pulumi-kubernetes")

# Kinds the provider is told not to await. Services: its await re-checks endpoints after a fixed
# 10 s pause, 10 s per stack for nothing, as the Deployments and StatefulSets behind them are awaited
# anyway. PersistentVolumeClaims (the backup volumes; data volumes come from StatefulSets): they
# bind when their first pod runs (WaitForFirstConsumer), and one kept by `destroy` and bound already
# was awaited until the provider's timeout on the real node.
SKIP_AWAIT = "pulumi.com/skipAwait"
_UNAWAITED_KINDS = {"Service", "PersistentVolumeClaim"}
# Created before everything else of their stack: the objects that others live in or are typed by.
_FIRST_KINDS = {"Namespace", "CustomResourceDefinition"}


@dataclass(frozen=True)
class Target:
    """The cluster as the provider sees it. The kubeconfig is passed as a path, so a restarted
    simulated cluster (new ports, same files) is the same cluster to Pulumi."""

    kubeconfig: Path
    context: str | None = None


@dataclass
class StackProgram:
    """Declares one stack's objects. `secret_values` maps `namespace/name` of each generated Secret to
    its values; `retained_namespaces` are kept on delete because their volumes hold data."""

    objects: list[dict]
    target: Target
    secret_values: dict[str, dict[str, str]] = field(default_factory=dict)
    retained_namespaces: set[str] = field(default_factory=set)

    def __call__(self) -> None:
        provider = k8s.Provider(
            "cluster",
            kubeconfig=str(self.target.kubeconfig),
            context=self.target.context,
            enable_server_side_apply=True,
        )
        first = [obj for obj in self.objects if obj["kind"] in _FIRST_KINDS]
        rest = [obj for obj in self.objects if obj["kind"] not in _FIRST_KINDS]
        created = [self._declare(obj, provider, []) for obj in first]
        for obj in rest:
            self._declare(obj, provider, created)

    def fingerprint(self) -> str:
        """Everything the program's resources depend on; mims writes it as the update's message.
        Equal to the last successful update's, the update has nothing to do: Pulumi, too, compares
        the program with its state, not with the cluster."""
        digest = hashlib.sha256()
        for part in (
            self.objects,
            str(self.target),
            self.secret_values,
            sorted(self.retained_namespaces),
            __version__,
            k8s_version,
        ):
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    def _declare(self, obj: dict, provider: k8s.Provider, depends_on: list) -> pulumi.Resource:
        meta = obj["metadata"]
        props = {k: v for k, v in obj.items() if k != "status"}
        if is_generated(obj):
            values = self.secret_values[secret_ref(obj)]
            props["stringData"] = pulumi.Output.secret(values)
        if obj["kind"] in _UNAWAITED_KINDS:
            props["metadata"] = {**meta, "annotations": {**(meta.get("annotations") or {}), SKIP_AWAIT: "true"}}
        retain = (obj["kind"] == "Namespace" and meta["name"] in self.retained_namespaces) or holds_backups(obj)
        options = pulumi.ResourceOptions(provider=provider, depends_on=depends_on, retain_on_delete=retain)
        return KubernetesObject(resource_name(obj), props, options)


class KubernetesObject(pulumi.CustomResource):
    """Any Kubernetes object, typed by its apiVersion and kind as the provider's own classes are
    (`kubernetes:apps/v1:Deployment`), so the provider applies its await logic and diffs."""

    def __init__(self, name: str, obj: dict, opts: pulumi.ResourceOptions):
        super().__init__(type_token(obj), name, dict(obj), opts)


def type_token(obj: dict) -> str:
    api_version = obj["apiVersion"]
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{obj['kind']}"


def resource_name(obj: dict) -> str:
    """Unique and stable within a stack: kind, namespace and name."""
    meta = obj["metadata"]
    parts = [obj["kind"].lower(), meta.get("namespace"), meta["name"]]
    return "-".join(p for p in parts if p)


def secret_ref(obj: dict) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def data_namespaces(objects: list[dict]) -> set[str]:
    """Namespaces holding StatefulSet volume claims or backup volumes: deleting them would delete
    the data."""
    return {
        obj["metadata"]["namespace"]
        for obj in objects
        if (obj["kind"] == "StatefulSet" and obj.get("spec", {}).get("volumeClaimTemplates")) or holds_backups(obj)
    }


def holds_backups(obj: dict) -> bool:
    """A backup volume: kept when its stack is destroyed, like the data (`mims destroy`)."""
    return obj["kind"] == "PersistentVolumeClaim" and (obj["metadata"].get("labels") or {}).get(BACKUPS_LABEL) == "true"


def secrets_program(values: dict) -> Callable[[], None]:
    """The `secrets` stack: no resources, one encrypted output holding every generated value."""

    def program() -> None:
        pulumi.export("values", pulumi.Output.secret(values))

    return program
