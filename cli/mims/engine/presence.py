"""Which of a rendering's objects are gone from the cluster: the cheap check that lets `plan` and
`up` keep skipping a stack whose inputs did not change, yet notice an object deleted by hand. One
metadata-only list per kind (about twenty requests for a whole platform), not an engine run per
stack (seconds each)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from urllib3.exceptions import HTTPError

from mims.errors import ClusterError

# Only names and labels come back, not the objects (Secrets, ConfigMaps with files).
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
CITY_LABEL = "mims.io/city"


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def object_ref(obj: dict) -> ObjectRef:
    meta = obj["metadata"]
    return ObjectRef(obj["kind"], meta.get("namespace", ""), meta["name"])


def missing_objects(api: ApiClient, objects: list[dict]) -> set[ObjectRef]:
    """The objects of `objects` the cluster does not have. Every object mims renders carries the
    city label, so one list per kind across namespaces finds them all; an object whose label was
    edited away counts as missing, which the refresh it triggers then shows. A kind the cluster does
    not serve (a CRD not installed yet) has all its objects missing."""
    by_kind: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for obj in objects:
        by_kind[obj["apiVersion"], obj["kind"]].append(obj)
    missing: set[ObjectRef] = set()
    try:
        dynamic = DynamicClient(api)
        for (api_version, kind), group in by_kind.items():
            cities = sorted({o["metadata"]["labels"][CITY_LABEL] for o in group})
            try:
                resource = dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                missing.update(object_ref(o) for o in group)
                continue
            listed = resource.get(
                label_selector=f"{CITY_LABEL} in ({','.join(cities)})", header_params={"Accept": METADATA_ONLY}
            )
            present = {(item.metadata.namespace or "", item.metadata.name) for item in listed.items}
            missing.update(
                ref
                for ref in map(object_ref, group)
                if (ref.namespace if resource.namespaced else "", ref.name) not in present
            )
    except (ApiException, DynamicApiError, HTTPError, OSError) as exc:
        raise ClusterError(f"could not list the platform's objects on the cluster: {_reason(exc)}") from None
    return missing


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return f"HTTP {status}: {getattr(exc, 'reason', '')}".strip() if status else str(exc)
