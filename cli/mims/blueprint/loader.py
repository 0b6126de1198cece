"""Blueprint file -> validated Blueprint, or every problem at once with file:line:column."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mims.blueprint.model import Blueprint, cross_checks
from mims.blueprint.problems import pydantic_problems
from mims.charts.meta import implementation_problems
from mims.cost.sheets import hosting_problems
from mims.errors import InvalidInput
from mims.yamlsource import SourceDoc, load_yaml


@dataclass(frozen=True)
class LoadedBlueprint:
    path: Path
    blueprint: Blueprint
    source: SourceDoc

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the blueprint (entries, contexts) are resolved against."""
        return self.path.parent


def load_blueprint(path: Path) -> LoadedBlueprint:
    source = load_yaml(path)
    blueprint = validate_data(source, base_dir=path.parent)
    return LoadedBlueprint(path=path, blueprint=blueprint, source=source)


def validate_data(source: SourceDoc, base_dir: Path | None = None) -> Blueprint:
    """`base_dir`: the blueprint's folder, which `budget.price_sheets_dir` and `charts.paths` are
    relative to."""
    charts = [source.problem(path, message) for path, message in implementation_problems(source.data, base_dir)]
    try:
        blueprint = Blueprint.model_validate(source.data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, source, Blueprint) + charts
        raise InvalidInput(sorted(problems, key=lambda p: (p.line or 0, p.column or 0))) from None
    rules = cross_checks(blueprint) + hosting_problems(blueprint.budget, base_dir)
    problems = charts + [source.problem(path, message) for path, message in rules]
    if problems:
        raise InvalidInput(problems)
    return blueprint
