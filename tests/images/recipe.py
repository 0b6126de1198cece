"""Image recipes: one YAML file per test image under tests/images/recipes/, read into these models.

A recipe says which upstream image it stands for (the name it is tagged with), where its facts come
from, how it differs from the upstream image, and how to build it: a base (a Debian root filesystem
or nothing), steps run in order, and the image config. Files a recipe ships live under
tests/images/files/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from mims.blueprint.problems import pydantic_problems
from mims.errors import InvalidInput, Problem
from mims.yamlsource import load_trusted_yaml, load_yaml

HERE = Path(__file__).parent
RECIPES = HERE / "recipes"
FILES = HERE / "files"

AbsolutePath = Annotated[str, Field(pattern=r"^/")]
Mode = Annotated[str, Field(pattern=r"^[0-7]{3,4}$", description="octal, e.g. 0755 or 1777")]
Owner = Annotated[str, Field(pattern=r"^[0-9]+:[0-9]+$", description="numeric uid:gid")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(Strict):
    """A user and its group, created with the upstream image's ids before packages could take them."""

    name: str
    uid: int = Field(ge=0)
    gid: int = Field(ge=0)
    group: str | None = Field(None, description="the group's name; default: the user's name")
    home: AbsolutePath = "/nonexistent"
    shell: AbsolutePath = "/usr/sbin/nologin"


class File(Strict):
    source: str = Field(description="path under tests/images/files/")
    path: AbsolutePath
    mode: Mode = "0644"
    owner: Owner = "0:0"


class Directory(Strict):
    path: AbsolutePath
    mode: Mode = "0755"
    owner: Owner = "0:0"


class GoModuleFile(Strict):
    """One file of a Go module at a pinned version, taken from the module cache (downloaded with the
    Go toolchain when missing): the source of a program the image compiles."""

    module: str
    version: str = Field(pattern=r"^v[0-9]")
    file: str
    path: AbsolutePath


class GoInstall(Strict):
    """A Go program built from the Go module proxy with the build host's Go (`go install`, no cgo:
    a static binary), as upstream's release build does it."""

    package: str = Field(description="the main package, e.g. github.com/oauth2-proxy/oauth2-proxy/v7")
    version: str = Field(pattern=r"^v[0-9]")
    ldflags: str = ""
    tags: list[str] = Field(default_factory=list, description="build tags")
    path: AbsolutePath


class Download(Strict):
    """A file from a registry the build machines reach (e.g. Maven Central), checked against the
    digest the registry publishes next to it; an archive can be unpacked instead of copied, as an
    upstream Dockerfile that ADDs and unpacks a release does."""

    url: str = Field(pattern=r"^https://")
    digest: str = Field(
        pattern=r"^(sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64})$",
        description="sha1:<hex> or sha256:<hex>, the registry's published digest of the file",
    )
    path: AbsolutePath = Field(description="the file; with unpack, the folder the archive's one top folder becomes")
    unpack: bool = Field(False, description="unpack a .zip or tar archive (modes kept, owned by root)")


class Output(Strict):
    source: AbsolutePath = Field(description="a file or folder in the build stage")
    path: AbsolutePath = Field(description="path in the image")


class UsersStep(Strict):
    users: list[User] = Field(min_length=1)


class AptStep(Strict):
    apt: list[str] = Field(min_length=1, description="Debian packages, installed without recommends")


class FilesStep(Strict):
    files: list[File] = Field(min_length=1)


class DirectoriesStep(Strict):
    directories: list[Directory] = Field(min_length=1)


class LinksStep(Strict):
    links: dict[AbsolutePath, str] = Field(min_length=1, description="symbolic link -> its target")


class RunStep(Strict):
    run: str | list[str] = Field(description="a shell script (sh -eu), or a command line run without a shell")


class GoModuleFileStep(Strict):
    go_module_file: GoModuleFile


class GoInstallStep(Strict):
    go_install: GoInstall


class DownloadStep(Strict):
    download: Download


def _step_kind(value) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


Step = Annotated[
    Annotated[UsersStep, Tag("users")]
    | Annotated[AptStep, Tag("apt")]
    | Annotated[FilesStep, Tag("files")]
    | Annotated[DirectoriesStep, Tag("directories")]
    | Annotated[LinksStep, Tag("links")]
    | Annotated[RunStep, Tag("run")]
    | Annotated[GoModuleFileStep, Tag("go_module_file")]
    | Annotated[GoInstallStep, Tag("go_install")]
    | Annotated[DownloadStep, Tag("download")],
    Discriminator(
        _step_kind,
        custom_error_type="step",
        custom_error_message="a step is a mapping with one key: users, apt, files, directories, links, run, go_module_file, go_install or download",
    ),
]


class BuildStage(Strict):
    """A throwaway Debian root filesystem where files are made (compiled, unpacked) for an image
    that should not carry the tools that made them; only `outputs` are copied into the image."""

    steps: list[Step] = Field(min_length=1)
    outputs: list[Output] = Field(min_length=1)


class Config(Strict):
    """The image config, as the upstream image sets it (null: the upstream image sets none)."""

    user: str | None = Field(None, description="USER; null runs as root like an image without USER")
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    workdir: AbsolutePath | None = None
    ports: list[int] = Field(default_factory=list)
    volumes: list[AbsolutePath] = Field(default_factory=list)
    stop_signal: str | None = Field(None, pattern=r"^SIG[A-Z0-9]+$")


class Difference(Strict):
    """How the test image differs from the upstream image, and why that is acceptable for a test."""

    what: str
    upstream: str
    here: str


class Recipe(Strict):
    image: str = Field(
        pattern=r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+:[A-Za-z0-9._-]+$",
        description="the full upstream reference the image is tagged with",
    )
    summary: str
    sources: list[str] = Field(min_length=1, description="where each fact comes from: repository@ref:path")
    differences: list[Difference] = Field(default_factory=list)
    base: Literal["debian", "scratch"]
    build: BuildStage | None = None
    steps: list[Step] = Field(default_factory=list)
    config: Config


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def load_recipe(name: str, folder: Path = RECIPES) -> Recipe:
    """The recipe `name` (tests/images/recipes/<name>.yaml); errors name file:line:column."""
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise InvalidInput([_problem(path, f"no recipe `{name}`; known: {', '.join(recipe_names())}")])
    try:
        recipe = Recipe.model_validate(load_trusted_yaml(path))
    except ValidationError as exc:
        raise InvalidInput(pydantic_problems(exc, load_yaml(path), Recipe)) from None
    missing = [f.source for f in shipped_files(recipe) if not (FILES / f.source).is_file()]
    if missing:
        raise InvalidInput([_problem(path, f"files not under {FILES}: {', '.join(missing)}; add them or fix `source`")])
    return recipe


def shipped_files(recipe: Recipe) -> list[File]:
    """Every file the recipe copies from tests/images/files/, in the build stage and the image."""
    steps = [*(recipe.build.steps if recipe.build else []), *recipe.steps]
    return [f for step in steps if isinstance(step, FilesStep) for f in step.files]


def _problem(path: Path, message: str) -> Problem:
    return Problem(str(path), None, None, "", message)
