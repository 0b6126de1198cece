"""`mims ci init`: the GitOps pipeline of a city's repository (plan on every pull or merge request,
`up` on merge, a scheduled drift check), written from the templates in `pipelines/` (data, like the
charts): a pipeline is a file the city reads and owns, not code it runs blind."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict

from mims import __version__, paths
from mims.blueprint import load_blueprint
from mims.errors import ChartError, UsageError


class Platform(BaseModel):
    """One CI platform in `pipelines/pipelines.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    file: str
    template: str
    secrets: dict[str, str]
    after: str


@dataclass(frozen=True)
class PipelineOptions:
    blueprint: str  # relative to the repository's root, as the pipeline runs there
    branch: str = "main"
    schedule: str = "17 5 * * *"
    install: str = f"mims=={__version__}"
    environment: str = "production"


def platforms() -> dict[str, Platform]:
    source = paths.pipelines_dir() / "pipelines.yaml"
    try:
        raw = yaml.safe_load(source.read_text())
        return {name: Platform.model_validate(entry) for name, entry in raw.items()}
    except (OSError, yaml.YAMLError, ValueError, AttributeError) as exc:
        raise ChartError(f"{source}: {exc}") from None


def render_pipeline(platform: str, options: PipelineOptions) -> str:
    spec = _platform(platform)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths.pipelines_dir()),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(spec.template).render(version=__version__, **asdict(options))


def write_pipeline(platform: str, options: PipelineOptions, root: Path, force: bool = False) -> Path:
    """Checks the options (the blueprint must load from `root`), then writes the platform's file under
    `root`; an existing file is kept unless `force`."""
    spec = _platform(platform)
    _check(options, root)
    target = root / spec.file
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    text = render_pipeline(platform, options)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def _platform(name: str) -> Platform:
    known = platforms()
    if name not in known:
        raise UsageError(f"unknown CI platform `{name}`; choose one of: {', '.join(known)}")
    return known[name]


_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_CRON_FIELD = re.compile(r"[0-9*/,-]+")
_QUOTE_UNSAFE = re.compile(r'["\\\n]')


def _check(options: PipelineOptions, root: Path) -> None:
    """Every value lands inside YAML the platforms parse and shell they run: only plain values pass."""
    blueprint = Path(options.blueprint)
    if blueprint.is_absolute() or ".." in blueprint.parts:
        raise UsageError(f"--blueprint {options.blueprint}: give the path relative to the repository's root")
    if not (root / blueprint).is_file():
        raise UsageError(f"--blueprint: {root / blueprint} does not exist; write it first (`mims init`)")
    load_blueprint(root / blueprint)  # InvalidInput lists its problems
    if not _BRANCH.fullmatch(options.branch) or ".." in options.branch:
        raise UsageError(f"--branch {options.branch!r} is not a branch name")
    if not _ENVIRONMENT.fullmatch(options.environment):
        raise UsageError(f"--environment {options.environment!r}: use letters, digits, - and _")
    fields = options.schedule.split()
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise UsageError(f"--schedule {options.schedule!r} is not a cron line of five fields, e.g. '17 5 * * *'")
    for name, value in (("--blueprint", options.blueprint), ("--install", options.install)):
        if _QUOTE_UNSAFE.search(value) or not value.strip():
            raise UsageError(f"{name} {value!r}: quotes, backslashes and line breaks are not allowed")
