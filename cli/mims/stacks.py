"""stacks/*.yaml: which components form which Pulumi stack (layer), and the order between layers."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mims.blueprint.problems import pydantic_problems
from mims.errors import ChartError
from mims.yamlsource import load_trusted_yaml, load_yaml


class Stack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    description: str
    components: list[str] = Field(min_length=1)
    depends_on: list[str] = Field(default_factory=list)


def load_stacks(folder: Path) -> list[Stack]:
    """All stacks, ordered so that every stack comes after the stacks it depends on."""
    stacks: dict[str, Stack] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            stack = Stack.model_validate(load_trusted_yaml(path))
        except ValidationError as exc:
            source = load_yaml(path)
            raise ChartError("\n".join(str(p) for p in pydantic_problems(exc, source, Stack))) from None
        if stack.name != path.stem:
            raise ChartError(f"{path}: name `{stack.name}` must match the file name `{path.stem}`")
        stacks[stack.name] = stack
    owners: dict[str, str] = {}
    for stack in stacks.values():
        for dep in stack.depends_on:
            if dep not in stacks:
                raise ChartError(f"{folder / (stack.name + '.yaml')}: depends_on names unknown stack `{dep}`")
        for component in stack.components:
            if component in owners:
                raise ChartError(f"component `{component}` is in stacks `{owners[component]}` and `{stack.name}`")
            owners[component] = stack.name
    return _ordered(stacks)


def _ordered(stacks: dict[str, Stack]) -> list[Stack]:
    done: list[Stack] = []
    placed: set[str] = set()
    pending = dict(sorted(stacks.items()))
    while pending:
        ready = [s for s in pending.values() if set(s.depends_on) <= placed]
        if not ready:
            raise ChartError(f"stacks depend on each other in a cycle: {', '.join(pending)}")
        for stack in ready:
            done.append(stack)
            placed.add(stack.name)
            del pending[stack.name]
    return done
