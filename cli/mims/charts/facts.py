"""charts/image-facts.yaml: what each pinned image does (user, entrypoint, paths, ports, probes,
variables), read from its upstream Dockerfile and source, so tests can hold the charts to it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from mims import paths
from mims.blueprint.problems import pydantic_problems
from mims.errors import ChartError
from mims.yamlsource import load_trusted_yaml, load_yaml

FILE_NAME = "image-facts.yaml"

ImageRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+:[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
AbsPath = Annotated[str, StringConstraints(pattern=r"^/\S*$")]
Port = Annotated[int, Field(ge=1, le=65535)]
# Starts with a path inside the entry's upstream repository at its ref, or `owner/name@ref:path` for
# another repository or revision; optional `:lines`, then further citations or a remark.
Source = Annotated[
    str, StringConstraints(pattern=r"^([\w.-]+/[\w.-]+@[^\s:]+:)?[\w.][\w./+-]*(:\d[\d,-]*)?([;,]?\s.*)?$")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Upstream(Strict):
    repository: Annotated[str, StringConstraints(pattern=r"^[\w.-]+/[\w.-]+$")]
    ref: str | None = Field(
        description="the git tag or commit the facts were read at; null when they come "
        "from several revisions, each named in its source"
    )


class User(Strict):
    uid: int | None = Field(ge=0, description="null when no source read states it (e.g. `adduser -S`)")
    gid: int | None = Field(ge=0)
    name: str
    source: Source
    note: str | None = None


class Command(Strict):
    """Exec form as the image sets it, or the text a build script gives in shell form; `null` when
    none is set."""

    value: list[str] | str | None
    source: Source

    @property
    def words(self) -> list[str]:
        if self.value is None:
            return []
        return self.value.split() if isinstance(self.value, str) else self.value


class Workdir(Strict):
    value: AbsPath | None
    source: Source


class ImagePath(Strict):
    path: AbsPath
    what: str
    source: Source


class Writable(Strict):
    """A path the software writes at run time. Conditions are texts looked for in what configures the
    container: its command line (the image's when not overridden), `NAME=value` environment and the
    files it names. Written when any `only_if` text is there (or none is given) and no `unless` text is."""

    path: AbsPath
    what: str
    source: Source
    only_if: list[str] = Field(default_factory=list)
    unless: list[str] = Field(default_factory=list)

    def written(self, configuration: str) -> bool:
        return (not self.only_if or any(t in configuration for t in self.only_if)) and not any(
            t in configuration for t in self.unless
        )


class PortFact(Strict):
    port: Port
    what: str
    source: Source


class Health(Strict):
    port: Port
    path: Annotated[str, StringConstraints(pattern=r"^/\S*$")]
    what: str | None = None
    source: Source


class EnvVar(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    what: str | None = None
    source: Source


class ImageFacts(Strict):
    upstream: Upstream
    traced: bool = Field(description="false when the tag could not be traced to a readable upstream release or commit")
    note: str | None = None
    user: User | None = None
    entrypoint: Command | None = None
    command: Command | None = None
    workdir: Workdir | None = None
    paths: list[ImagePath]
    writable: list[Writable]
    ports: list[PortFact]
    health: list[Health]
    env: list[EnvVar]

    @model_validator(mode="after")
    def _complete_or_explained(self) -> ImageFacts:
        if not self.traced and not self.note:
            raise ValueError("an untraced image needs a `note` saying why and what was read instead")
        missing = [k for k in ("user", "entrypoint", "command", "workdir") if getattr(self, k) is None]
        if self.traced and missing:
            raise ValueError(f"a traced image needs {', '.join(missing)}")
        return self

    def path_known(self, path: str) -> bool:
        """`path` is listed, or is what the image's entrypoint or command runs."""
        runs = [c.words[0] for c in (self.entrypoint, self.command) if c and c.words]
        return path in runs or any(p.path == path for p in self.paths)

    def default_run(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """What a container runs, by Kubernetes' rules: its command replaces the entrypoint (and the
        image's command), its args replace the image's command."""
        if command:
            return command + (args or [])
        entrypoint = self.entrypoint.words if self.entrypoint else []
        image_command = self.command.words if self.command else []
        return entrypoint + (args if args else image_command)


class ImageFactsFile(Strict):
    images: dict[ImageRef, ImageFacts]


@lru_cache(maxsize=4)
def load_image_facts(path: Path | None = None) -> ImageFactsFile:
    """The facts file (charts/image-facts.yaml by default); problems name file:line:column."""
    path = path or paths.charts_dir() / FILE_NAME
    try:
        return ImageFactsFile.model_validate(load_trusted_yaml(path))
    except ValidationError as exc:
        source = load_yaml(path)
        raise ChartError("\n".join(str(p) for p in pydantic_problems(exc, source, ImageFactsFile))) from None
