"""layers/*.yaml: which components form which layer, and the order between layers. Each layer is
deployed as one Pulumi stack (`mims-<layer>`), so "layer" names the definition here and "stack" the
Pulumi stack the engine keeps for it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mims.blueprint.problems import pydantic_problems
from mims.errors import ChartError
from mims.yamlsource import load_trusted_yaml, load_yaml


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    description: str
    components: list[str] = Field(min_length=1)
    depends_on: list[str] = Field(default_factory=list)


def load_layers(folder: Path) -> list[Layer]:
    """All layers, ordered so that every layer comes after the layers it depends on."""
    layers: dict[str, Layer] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            layer = Layer.model_validate(load_trusted_yaml(path))
        except ValidationError as exc:
            source = load_yaml(path)
            raise ChartError("\n".join(str(p) for p in pydantic_problems(exc, source, Layer))) from None
        if layer.name != path.stem:
            raise ChartError(f"{path}: name `{layer.name}` must match the file name `{path.stem}`")
        layers[layer.name] = layer
    owners: dict[str, str] = {}
    for layer in layers.values():
        for dep in layer.depends_on:
            if dep not in layers:
                raise ChartError(f"{folder / (layer.name + '.yaml')}: depends_on names unknown layer `{dep}`")
        for component in layer.components:
            if component in owners:
                raise ChartError(f"component `{component}` is in layers `{owners[component]}` and `{layer.name}`")
            owners[component] = layer.name
    return _ordered(layers)


def _ordered(layers: dict[str, Layer]) -> list[Layer]:
    done: list[Layer] = []
    placed: set[str] = set()
    pending = dict(sorted(layers.items()))
    while pending:
        ready = [s for s in pending.values() if set(s.depends_on) <= placed]
        if not ready:
            raise ChartError(f"layers depend on each other in a cycle: {', '.join(pending)}")
        for layer in ready:
            done.append(layer)
            placed.add(layer.name)
            del pending[layer.name]
    return done
