"""Which container images a rendering makes the cluster pull (`mims images`), with their mirrored
names when the blueprint has `images.mirror` (docs/air-gapped.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mims.charts.footprint import COMPONENT_LABEL
from mims.charts.mirror import containers_of
from mims.charts.render import Rendering

# `mims verify`'s probe Job (mims.verify.incluster) needs a shell with `nc`; listed so an air-gapped
# city mirrors it too.
VERIFY_PROBE_IMAGE = "docker.io/library/busybox:1.35.0"


def pulled_name(rendering: Rendering, ref: str) -> str:
    """`ref` as the cluster pulls it: renamed into the blueprint's mirror when it has one."""
    return rendering.mirror.rename(ref) if rendering.mirror else ref


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
        return {
            "component": self.component,
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "container": self.container,
            "init": self.init,
        }


@dataclass
class ImageUse:
    image: str
    mirrored: str | None
    uses: list[Use] = field(default_factory=list)

    @property
    def components(self) -> list[str]:
        return list(dict.fromkeys(u.component for u in self.uses))

    def as_dict(self) -> dict:
        return {
            "image": self.image,
            "mirrored": self.mirrored,
            "components": self.components,
            "used_by": [u.as_dict() for u in self.uses],
        }


def image_list(rendering: Rendering) -> list[ImageUse]:
    """Every image the rendering pulls, once each, sorted by source reference: the containers of
    every rendered object, plus the images a chart declares with `started_by` (pulled by software
    the chart runs, e.g. cert-manager's ACME solver), and `mims verify`'s probe image. Chart images of enabled components that
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
            add(
                container["image"],
                Use(
                    meta.get("labels", {}).get(COMPONENT_LABEL, ""),
                    meta.get("namespace"),
                    obj["kind"],
                    meta["name"],
                    container.get("name"),
                    init,
                ),
            )
    for component, chart in rendering.charts.items():
        for image in chart.meta.images.values():
            if image.started_by:
                add(pulled_name(rendering, image.ref), Use(component, started_by=image.started_by))
    add(pulled_name(rendering, VERIFY_PROBE_IMAGE), Use("verify", started_by="mims verify (its probe Job)"))
    return [found[source] for source in sorted(found)]
