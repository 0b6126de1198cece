"""tools.yaml as a model: each tool's version, how it is built, checked and downloaded (the comment at the
top of tools.yaml explains the recipe kinds and the `download:` templates). Strict like every file a
person edits: a misspelt key or a broken rule is a ToolchainError naming file:line:column."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mims.blueprint.problems import pydantic_problems
from mims.errors import InvalidInput, Problem, ToolchainError
from mims.yamlsource import load_trusted_yaml, load_yaml

TOOLS_FILE = Path(__file__).with_name("tools.yaml")
PLATFORMS = ("linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64")
# Keys of a tools.yaml entry that do not change what a build produces: editing them keeps built tools.
NOT_IN_DIGEST = ("download", "module_sum")

Recipe = Literal["install", "main-module"]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Sha256 = Annotated[str, StringConstraints(to_lower=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(Strict):
    """Runs a binary with `args`; its output must show `expect` as a whole version."""

    args: tuple[str, ...] = ()
    expect: str


class GenerateStep(Strict):
    """A command run in the module copy before a main-module build, for files the module zip lacks."""

    dir: str = "."
    run: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = {}


class Plugin(Strict):
    """A Pulumi provider plugin, placed as `$PULUMI_HOME/plugins/<kind>-<name>-v<version>/<binary>`."""

    kind: str
    name: str
    binary: str  # one of the tool's binaries; tools.yaml may leave it out for the first one


class Download(Strict):
    """The official release. `url` and `checksums` are templates: {version}, {os}, {arch}, {ext} and,
    for one file per binary, {binary}."""

    url: str = ""  # required: `_url_and_checksum` reports it missing
    checksums: str = ""  # the published sha256 list (or one hash)
    sha256: dict[str, Sha256] = {}  # pinned, by os/arch, when none is published
    paths: dict[str, str] = {}  # binary -> path inside the archive
    platforms: tuple[str, ...]  # what the project releases (`_default_platforms`)
    os: dict[str, str] = {}  # Go's os name -> the URL's
    arch: dict[str, str] = {}  # Go's arch name -> the URL's
    ext: dict[str, str] = {}  # os -> archive extension ({ext})

    @model_validator(mode="before")
    @classmethod
    def _default_platforms(cls, data: Any) -> Any:
        """All of PLATFORMS, but without a checksum file only those with a pinned sha256 (the others
        cannot be verified)."""
        if isinstance(data, dict) and not data.get("platforms"):
            pinned = data.get("sha256")
            default = PLATFORMS if data.get("checksums") else list(pinned) if isinstance(pinned, dict) else []
            data = {**data, "platforms": default}
        return data

    @model_validator(mode="after")
    def _url_and_checksum(self) -> Download:
        if not self.url:
            raise ValueError("`download` needs a `url`")
        if not self.checksums and not self.sha256:
            raise ValueError("`download` needs `checksums` (a URL) or pinned `sha256` values")
        return self

    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or self.url


class Tool(Strict):
    """One entry of tools.yaml; `name` is its key there."""

    version: NonEmpty
    module: NonEmpty
    module_version: NonEmpty
    recipe: Recipe
    binaries: dict[str, str] = Field(min_length=1)  # binary -> package path inside the module
    ldflags: str = ""
    tags: tuple[str, ...] = ()
    local_replaces: str | dict[str, str] | None = None  # one published version, or module -> version
    generate: tuple[GenerateStep, ...] = ()
    files: dict[str, str] = {}  # destination in the tool dir -> path inside the module
    check: dict[str, Check] = {}
    plugin: Plugin | None = None
    download: Download | None = None
    module_sum: str = ""  # go.sum's h1: hash of the module zip; verifies `files` taken from it unbuilt

    _name: str = PrivateAttr("")
    _digest: str = PrivateAttr("")

    # Field validators see the fields declared above theirs in `info.data`; a field missing there is
    # invalid and reported on its own, so the rules that need it are skipped.

    @field_validator("recipe", mode="before")
    @classmethod
    def _known_recipe(cls, value: Any) -> Any:
        if value not in get_args(Recipe):
            raise ValueError(f"unknown recipe {value!r} ({' or '.join(get_args(Recipe))})")
        return value

    @field_validator("ldflags")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())

    @field_validator("local_replaces", mode="before")
    @classmethod
    def _version_or_map(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (str, dict)):
            raise ValueError("`local_replaces` is a version or a map module -> version")
        return value

    @field_validator("local_replaces", "generate")
    @classmethod
    def _main_module_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value and info.data.get("recipe") == "install":
            raise ValueError("`local_replaces` and `generate` need recipe main-module")
        return value

    @field_validator("check")
    @classmethod
    def _checks_known_binaries(cls, value: dict[str, Check], info: ValidationInfo) -> dict[str, Check]:
        binaries = info.data.get("binaries")
        if binaries is None:
            return value
        unknown = [b for b in value if b not in binaries]
        if unknown:
            raise ValueError(f"check for unknown binary {unknown[0]!r} (binaries: {', '.join(binaries)})")
        return value

    @field_validator("plugin", mode="before")
    @classmethod
    def _plugin_binary_defaults_to_first(cls, value: Any, info: ValidationInfo) -> Any:
        binaries = info.data.get("binaries")
        if isinstance(value, dict) and not value.get("binary") and binaries:
            value = {**value, "binary": next(iter(binaries))}
        return value

    @field_validator("plugin")
    @classmethod
    def _plugin_among_binaries(cls, value: Plugin | None, info: ValidationInfo) -> Plugin | None:
        binaries = info.data.get("binaries")
        if value is None or binaries is None:
            return value
        if value.binary not in binaries:
            raise ValueError(f"plugin binary {value.binary!r} is not among `binaries`")
        return value

    @field_validator("download")
    @classmethod
    def _download_of_these_binaries(cls, value: Download | None, info: ValidationInfo) -> Download | None:
        binaries = info.data.get("binaries")
        if value is None or binaries is None:
            return value
        if any(b not in binaries for b in value.paths):
            raise ValueError("`download.paths` names a binary that is not among `binaries`")
        if "{binary}" not in value.url and not _is_archive(value.url) and len(binaries) != 1:
            raise ValueError("a `download.url` without {binary} must be an archive or the tool's only binary")
        return value

    @property
    def name(self) -> str:
        return self._name

    @property
    def dir_name(self) -> str:
        return f"{self.name}-{self.version}"

    def expand(self, text: str) -> str:
        """`{version}`, `{major}`, `{minor}` of the tool's version in ldflags, commands and checks."""
        major, minor = (self.version.split(".") + ["", ""])[:2]
        return text.replace("{version}", self.version).replace("{major}", major).replace("{minor}", minor)

    def digest(self) -> str:
        """Changes whenever the recipe does; a tool installed with another digest is installed again."""
        return self._digest

    def verifiable(self, binary: str) -> bool:
        """A copy of `binary` not built here can be checked: by its `check`, or asked as a plugin."""
        return binary in self.check or (self.plugin is not None and self.plugin.binary == binary)

    def published_version(self, module: str) -> str:
        """The version `local_replaces` gives a module the tool's go.mod replaces with a local path."""
        if isinstance(self.local_replaces, str):
            return self.local_replaces
        return (self.local_replaces or {}).get(module, "")


class ToolsFile(Strict):
    go: str = ""  # the oldest Go that builds every tool
    tools: dict[str, Tool]

    @model_validator(mode="wrap")
    @classmethod
    def _name_and_digest(cls, data: Any, handler: Any) -> ToolsFile:
        """Each tool gets its key as name, and the digest of its entry as written."""
        parsed = handler(data)
        for name, tool in parsed.tools.items():
            tool._name = name
            tool._digest = recipe_digest(name, data["tools"][name])
        return parsed


def recipe_digest(name: str, entry: Mapping[str, Any]) -> str:
    """A hash of the tools.yaml entry as written, without the keys of NOT_IN_DIGEST (where a tool may
    be downloaded from is not part of its recipe); tool.json files record it."""
    spec = {k: v for k, v in entry.items() if k not in NOT_IN_DIGEST}
    text = json.dumps({"spec": spec, "name": name}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_tools(path: Path | None = None) -> tuple[str, dict[str, Tool]]:
    """The minimum Go version and the tools, by name, in file order."""
    path = path or TOOLS_FILE
    try:
        parsed = _parse(path)
    except InvalidInput as exc:
        raise ToolchainError(str(exc), tool=_tool_of(exc.problems)) from None
    return parsed.go, dict(parsed.tools)


def _parse(path: Path) -> ToolsFile:
    """Read fast; only a file that does not validate is read again with positions, for the errors."""
    data = load_trusted_yaml(path)
    try:
        return ToolsFile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(pydantic_problems(exc, load_yaml(path), ToolsFile)) from None


def _tool_of(problems: list[Problem]) -> str:
    """The tool the first problem is in (`tools.<name>....`), or ''."""
    parts = problems[0].field.split(".") if problems else []
    return parts[1] if len(parts) > 1 and parts[0] == "tools" else ""


def _is_archive(name: str) -> bool:
    return name.endswith((".tar.gz", ".tgz", ".zip", "{ext}"))
