"""`mims init`: a starter blueprint from `blueprints/starter.yaml.j2`, checked before it is written."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2

from mims import paths
from mims.blueprint.loader import validate_data
from mims.errors import UsageError
from mims.yamlsource import parse_yaml


@dataclass(frozen=True)
class StarterAnswers:
    name: str
    display_name: str
    country: str
    domain: str
    environment: str = "prod"
    profile: str = "minimal-50k"
    cap_eur: int = 50_000
    broker: str = "orion-ld"


def starter_text(answers: StarterAnswers, file_name: str) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["quote"] = lambda v: json.dumps(v, ensure_ascii=False)
    template = env.from_string((paths.blueprints_dir() / "starter.yaml.j2").read_text())
    return template.render(asdict(answers), file_name=file_name)


def write_starter(path: Path, answers: StarterAnswers, *, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    text = starter_text(answers, path.name)
    validate_data(
        parse_yaml(text, str(path)), base_dir=path.parent
    )  # answers are checked by the same rules as any blueprint
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    (path.parent / "algorithms").mkdir(exist_ok=True)
