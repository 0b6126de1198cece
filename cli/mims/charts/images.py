"""Container images: which ones a rendering makes the cluster pull (`mims images`), and how the
blueprint's `images.mirror` renames them to a private registry (docs/air-gapped.md).

A mirrored reference is the mirror followed by everything after the source's registry host:
`docker.io/library/mongo:8.0.26` -> `<mirror>/library/mongo:8.0.26`; tag and digest are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from mims.errors import ChartError

if TYPE_CHECKING:
    from mims.charts.render import Rendering

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
COMPONENT_LABEL = "mims.io/component"


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
            raise ChartError(f"images.mirror: `{earlier}` and `{ref}` would both be mirrored as `{target}` "
                             "(same path on two registries); change one of the images (chart.yaml or "
                             "an override) or mirror without `images.mirror` by hand")
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


@dataclass(frozen=True)
class Use:
    """One place an image is used: a container of a rendered object, or software that starts it."""

    component: str
    namespace: str | None = None
    kind: str | None = None
    name: str | None = None
    container: str | None = None
    init: bool = False
    started_by: str | None = None

    def __str__(self) -> str:
        if self.started_by:
            return f"started by {self.started_by}"
        return f"{self.kind} {self.name}: {self.container}" + (" (init)" if self.init else "")

    def as_dict(self) -> dict:
        if self.started_by:
            return {"component": self.component, "started_by": self.started_by}
        return {"component": self.component, "namespace": self.namespace, "kind": self.kind,
                "name": self.name, "container": self.container, "init": self.init}


@dataclass
class ImageUse:
    image: str
    mirrored: str | None
    uses: list[Use] = field(default_factory=list)

    @property
    def components(self) -> list[str]:
        return list(dict.fromkeys(u.component for u in self.uses))

    def as_dict(self) -> dict:
        return {"image": self.image, "mirrored": self.mirrored, "components": self.components,
                "used_by": [u.as_dict() for u in self.uses]}


def image_list(rendering: Rendering) -> list[ImageUse]:
    """Every image the rendering pulls, once each, sorted by source reference: the containers of
    every rendered object, plus the images a chart declares with `started_by` (pulled by software
    the chart runs, e.g. cert-manager's ACME solver). Chart images of enabled components that
    neither appear in a container nor have `started_by` are not pulled, so not listed."""
    mirror = rendering.mirror
    found: dict[str, ImageUse] = {}

    def add(ref: str, use: Use) -> None:
        source = mirror.sources.get(ref, ref) if mirror else ref
        entry = found.setdefault(source, ImageUse(source, ref if mirror else None))
        if use not in entry.uses:
            entry.uses.append(use)

    for obj in rendering.objects():
        meta = obj["metadata"]
        for container, init in containers_of(obj):
            add(container["image"], Use(meta.get("labels", {}).get(COMPONENT_LABEL, ""), meta.get("namespace"),
                                        obj["kind"], meta["name"], container.get("name"), init))
    for component, chart in rendering.charts.items():
        for image in chart.meta.images.values():
            if image.started_by:
                ref = mirror.rename(image.ref) if mirror else image.ref
                add(ref, Use(component, started_by=image.started_by))
    return [found[source] for source in sorted(found)]
