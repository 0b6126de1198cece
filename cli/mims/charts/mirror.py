"""How the blueprint's `images.mirror` renames container images to a private registry
(docs/air-gapped.md), applied while rendering.

A mirrored reference is the mirror followed by everything after the source's registry host:
`docker.io/library/mongo:8.0.26` -> `<mirror>/library/mongo:8.0.26`; tag and digest are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mims.errors import ChartError

# How container runtimes read a reference without a registry host (distribution/reference v0.6.0,
# normalize.go, splitDockerDomain): the first path element is a host only if it contains `.` or
# `:` or is `localhost`; otherwise the image is on Docker Hub, and a one-element name is under
# `library/`. `index.docker.io` is Docker Hub's legacy name.
DOCKER_HUB = "docker.io"
DOCKER_HUB_LEGACY = "index.docker.io"
OFFICIAL_PREFIX = "library/"

# Where each kind of workload keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def split_registry(ref: str) -> tuple[str, str]:
    """(registry host, path with tag and digest), as a container runtime resolves `ref`."""
    first, slash, rest = ref.partition("/")
    if slash and first == DOCKER_HUB_LEGACY:
        first = DOCKER_HUB
    if slash and (first == "localhost" or any(c in first for c in ".:") or first.lower() != first):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, ref
    if registry == DOCKER_HUB and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return registry, path


def mirrored(ref: str, mirror: str) -> str:
    return f"{mirror}/{split_registry(ref)[1]}"


@dataclass
class Mirror:
    """A render's registry mirror: renames references and remembers each one's source, so that
    `mims images` can show what to copy where."""

    registry: str
    sources: dict[str, str] = field(default_factory=dict)

    def rename(self, ref: str) -> str:
        if ref.startswith(self.registry + "/"):
            return ref  # already in the mirror, e.g. an override's own image
        target = mirrored(ref, self.registry)
        earlier = self.sources.setdefault(target, ref)
        if split_registry(earlier) != split_registry(ref):
            raise ChartError(
                f"images.mirror: `{earlier}` and `{ref}` would both be mirrored as `{target}` "
                "(same path on two registries); change one of the images (chart.yaml or "
                "an override) or mirror without `images.mirror` by hand"
            )
        return target

    def rename_containers(self, objects: list[dict]) -> None:
        """Point every container at the mirror, including those an override wrote after rendering."""
        for obj in objects:
            for container, _ in containers_of(obj):
                if isinstance(container.get("image"), str):
                    container["image"] = self.rename(container["image"])


def containers_of(obj: dict) -> Iterator[tuple[dict, bool]]:
    """(container, is an init container) for every container of a workload object."""
    spec: object = obj
    for key in POD_SPEC_PATHS.get(obj.get("kind", ""), ("-",)):
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return
    for key, init in (("initContainers", True), ("containers", False)):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container, init
