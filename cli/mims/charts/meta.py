"""chart.yaml: what a chart is, which MIMs it serves, its images, sizes, endpoints and network flows."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from mims import paths
from mims.blueprint.model import IMPLEMENTATION_PATTERN, PROFILES, Addons, Components, Profile, TlsMode
from mims.blueprint.problems import pydantic_problems
from mims.charts.quantity import bytes_of, cpu_millicores
from mims.errors import ChartError
from mims.yamlsource import load_trusted_yaml, load_yaml

Name = Annotated[str, StringConstraints(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]
CHARTS_PATH_VARIABLE = "MIMS_CHARTS_PATH"
ENTRANCE = "entrance"  # a call's target: the city's public address (see `Network.entrance`)
# Chart component ids: the blueprint's sections, `ai_registry` spelled `ai-registry`.
COMPONENT_IDS = frozenset(n.replace("_", "-") for n in (*Components.model_fields, *Addons.model_fields))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Image(Strict):
    repository: str
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    digest: Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")] | None = None
    started_by: Annotated[str, StringConstraints(min_length=10)] | None = Field(
        None,
        description="for an image no rendered container runs but software the chart runs starts "
        "(the chart passes it on, e.g. as a flag): what starts it; `mims images` lists "
        "it and `images.mirror` renames it like every other",
    )

    @model_validator(mode="after")
    def _no_floating_tag(self) -> Image:
        if self.tag in ("latest", "stable", "main", "master"):
            raise ValueError(f"tag `{self.tag}` moves; pin an explicit version")
        return self

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class Resources(Strict):
    cpu: Quantity
    memory: Quantity


class Size(Strict):
    replicas: int = Field(1, ge=0, le=20)
    requests: Resources
    limits: Resources
    storage: Quantity | None = None
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Size:
        if cpu_millicores(self.limits.cpu) < cpu_millicores(self.requests.cpu):
            raise ValueError("limits.cpu is below requests.cpu")
        if bytes_of(self.limits.memory) < bytes_of(self.requests.memory):
            raise ValueError("limits.memory is below requests.memory")
        return self


class Endpoint(Strict):
    """A service other components (or the public, through the gateway) call.

    `http` endpoints are routed by the gateway by host and path. A public `tcp` endpoint (MQTT, say)
    is a raw stream the platform's public entry point (the ingress controller add-on, else the
    gateway) takes on `public_port`, ends TLS for `host.<domain>` and forwards to `workload:port`."""

    name: Name
    workload: Name
    port: int = Field(ge=1, le=65535)
    description: str
    protocol: Literal["http", "tcp"] = "http"
    public: bool = Field(False, description="reachable from outside the cluster under `host.<domain>`")
    host: Name | None = None
    path: str = "/"
    writes_need_token: bool = Field(True, description="POST/PUT/PATCH/DELETE need an OIDC token")
    reads_need_token: bool = Field(False, description="every method, GET/HEAD/OPTIONS too, needs an OIDC token")
    hidden_paths: list[Annotated[str, StringConstraints(pattern=r"^/[^\s;{}'\"]*$")]] = Field(
        default_factory=list,
        description="path prefixes under `path` the gateway never forwards (404): operations of the "
        "software that are internal or unsafe in public",
    )
    public_port: int | None = Field(
        None,
        ge=1025,
        le=65535,
        description="tcp: the port on the public load balancer (and on the entry "
        "point's pods: above 1024, so no capability is needed)",
    )
    scheme: Name | None = Field(None, description="tcp: URL scheme shown to people, e.g. `mqtts`")

    @model_validator(mode="after")
    def _consistent(self) -> Endpoint:
        if self.public and not self.host:
            raise ValueError("a public endpoint needs `host`")
        if self.reads_need_token and not self.writes_need_token:
            raise ValueError("`reads_need_token` needs `writes_need_token` too")
        http_only = sorted({"path", "writes_need_token", "reads_need_token", "hidden_paths"} & self.model_fields_set)
        if self.protocol == "tcp" and http_only:
            raise ValueError(f"`{http_only[0]}` is for http endpoints; a tcp endpoint has no paths or methods")
        if self.protocol == "http" and (self.public_port or self.scheme):
            raise ValueError("`public_port` and `scheme` are for tcp endpoints")
        if self.protocol == "tcp" and self.public and not (self.public_port and self.scheme):
            raise ValueError("a public tcp endpoint needs `public_port` and `scheme`")
        outside = [p for p in self.hidden_paths if not p.startswith(self.path)]
        if outside:
            raise ValueError(f"hidden path `{outside[0]}` is not under the endpoint's path `{self.path}`")
        if self.protocol == "tcp" and self.public and len(self.name) > 15:
            raise ValueError("a public tcp endpoint's name names a container port: at most 15 characters")
        return self


class MetricsTarget(Strict):
    workload: Name
    port: int = Field(ge=1, le=65535)
    path: str = "/metrics"


class Flow(Strict):
    """Traffic inside the chart's namespace, from one workload to another."""

    source: Name = Field(alias="from")
    to: Name
    port: int = Field(ge=1, le=65535)


class Database(Strict):
    """A database the chart runs through `_lib/postgres.j2`: the blueprint's `backup` dumps it, and
    its backup pods get a flow to it."""

    workload: Name
    engine: Literal["postgres"] = "postgres"

    @property
    def port(self) -> int:
        return 5432

    @property
    def backup_workload(self) -> str:
        return f"{self.workload}-backup"


class Call(Strict):
    """Traffic to another component's endpoint (`component/endpoint`), `*` for every public http
    endpoint, `*tcp` for every public tcp endpoint (the caller is then their public entry point and
    also takes each one's `public_port` from anywhere), or `entrance` for the city's public URLs
    (`<host>.<domain>`), which land on the entrance ports."""

    source: Name = Field(alias="from")
    endpoint: Annotated[str, StringConstraints(pattern=r"^(\*|\*tcp|entrance|[a-z-]+/[a-z-]+)$")]
    tls: list[TlsMode] | None = Field(None, description="only with these `tls.mode`s (default: every mode)")
    unless: Name | None = Field(None, description="no such traffic when this component is enabled")

    @model_validator(mode="after")
    def _unless_names_a_component(self) -> Call:
        _check_component(self.unless)
        return self


class EntrancePort(Strict):
    """A container port that traffic to the city's public address lands on. The chart's LoadBalancer
    Service forwards there, and for a pod that calls a public URL kube-proxy or the CNI rewrites the
    destination to this pod and port before NetworkPolicy sees it: callers need egress here."""

    workload: Name
    port: int = Field(ge=1, le=65535)
    unless: Name | None = Field(None, description="a component that, when enabled, holds the public address instead")
    tls: list[TlsMode] | None = Field(None, description="only bound with these `tls.mode`s (default: every mode)")

    @model_validator(mode="after")
    def _unless_names_a_component(self) -> EntrancePort:
        _check_component(self.unless)
        return self


def _check_component(unless: str | None) -> None:
    """A misspelt `unless` would leave the rule in force always, a wider policy than meant."""
    if unless is not None and unless not in COMPONENT_IDS:
        raise ValueError(f"unless: `{unless}` is no component; use one of {', '.join(sorted(COMPONENT_IDS))}")


class External(Strict):
    """Traffic leaving the cluster (or to the Kubernetes API), which no pod selector can name."""

    source: Name = Field(alias="from")
    ports: list[int] = Field(min_length=1)
    to: Literal["internet", "anywhere"] = Field(
        "internet",
        description="`internet`: public addresses only (private, CGNAT and link-local ranges "
        "excluded); `anywhere`: also private ones, e.g. the Kubernetes API server",
    )
    reason: str = Field(min_length=10, description="why the workload needs it; shown in docs and reviews")


class Opening(Strict):
    """A port that takes traffic no pod selector can name: an entry point of the cluster or a port the
    Kubernetes API server calls."""

    workload: Name
    port: int = Field(ge=1, le=65535)
    source: Literal["internet", "anywhere"] = Field(
        alias="from",
        description="`internet`: public addresses only (private, CGNAT and link-local ranges "
        "excluded, so no pod either); `anywhere`: any address and any pod",
    )
    unless: Name | None = Field(
        None,
        description="a component whose presence closes this opening: it stands in front of the "
        "workload and reaches it through a `calls` entry of its own",
    )


class Network(Strict):
    flows: list[Flow] = Field(default_factory=list)
    external: list[External] = Field(default_factory=list)
    calls: list[Call] = Field(default_factory=list)
    open: list[Opening] = Field(default_factory=list)
    scrapes: Name | None = Field(None, description="this workload scrapes every metrics target")
    entrance: list[EntrancePort] = Field(
        default_factory=list, description="where the city's public address lands inside the cluster"
    )


class Licence(Strict):
    software: str
    licence: str


class ChartMeta(Strict):
    name: Name
    component: Name
    implementation: Name
    version: str
    description: str
    mims: list[Literal["MIM1", "MIM2", "MIM3", "MIM4", "MIM5", "MIM6", "MIM7", "framework"]]
    licences: list[Licence]
    images: dict[Name, Image]
    workloads: dict[Name, dict[Profile, Size]] = Field(default_factory=dict)
    endpoints: list[Endpoint] = Field(default_factory=list)
    metrics: list[MetricsTarget] = Field(default_factory=list)
    network: Network = Network()
    databases: list[Database] = Field(
        default_factory=list, description="databases the chart runs, which `backup` dumps and `mims restore` restores"
    )
    provides: list[Literal["ngsi-ld-temporal"]] = Field(
        default_factory=list,
        description="optional capabilities of the software that `mims verify` probes: "
        "`ngsi-ld-temporal`, the NGSI-LD temporal API (`/ngsi-ld/v1/temporal/`)",
    )
    optional_workloads: dict[Name, Name] = Field(
        default_factory=dict,
        description="workloads a component option can leave out: {workload: the option}, a boolean "
        "option of the component's `options` that is true by default",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ChartMeta:
        for workload, sizes in self.workloads.items():
            missing = [p for p in PROFILES if p not in sizes]
            if missing:
                raise ValueError(f"workload `{workload}` has no size for profile(s) {', '.join(missing)}")
        known = set(self.workloads)
        named = (
            [e.workload for e in self.endpoints]
            + [m.workload for m in self.metrics]
            + [f.source for f in self.network.flows]
            + [f.to for f in self.network.flows]
            + [c.source for c in self.network.calls]
            + [o.workload for o in self.network.open]
            + [e.source for e in self.network.external]
            + [e.workload for e in self.network.entrance]
            + ([self.network.scrapes] if self.network.scrapes else [])
            + list(self.optional_workloads)
            + [d.workload for d in self.databases]
        )
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValueError(f"unknown workload(s) {', '.join(unknown)}; declare them under `workloads`")
        return self

    def without(self, left_out: set[str]) -> ChartMeta:
        """This chart as a blueprint that leaves out `left_out` workloads sees it: their sizes,
        endpoints, metrics and traffic gone, so no template, policy or scrape job names them."""
        if not left_out:
            return self
        net = self.network
        network = net.model_copy(
            update={
                "flows": [f for f in net.flows if f.source not in left_out and f.to not in left_out],
                "calls": [c for c in net.calls if c.source not in left_out],
                "open": [o for o in net.open if o.workload not in left_out],
                "external": [e for e in net.external if e.source not in left_out],
                "entrance": [e for e in net.entrance if e.workload not in left_out],
                "scrapes": None if net.scrapes in left_out else net.scrapes,
            }
        )
        return self.model_copy(
            update={
                "workloads": {w: s for w, s in self.workloads.items() if w not in left_out},
                "endpoints": [e for e in self.endpoints if e.workload not in left_out],
                "metrics": [m for m in self.metrics if m.workload not in left_out],
                "network": network,
            }
        )


class Chart:
    """A chart folder: `chart.yaml`, `templates/*.yaml.j2`, optional `files/` for config file templates.

    `key` is the first part of its template names: the folder name for a shipped chart; for a chart
    of the city's own the folder name and a digest of its path, so two cities' folders of the same
    name never stand for each other in one renderer."""

    def __init__(self, path: Path, meta: ChartMeta, key: str | None = None):
        self.path = path
        self.meta = meta
        self.key = key or path.name

    @classmethod
    def load(cls, path: Path, key: str | None = None) -> Chart:
        try:
            meta = ChartMeta.model_validate(load_trusted_yaml(path / "chart.yaml"))
        except ValidationError as exc:
            source = load_yaml(path / "chart.yaml")
            raise ChartError("\n".join(str(p) for p in pydantic_problems(exc, source, ChartMeta))) from None
        return cls(path, meta, key)

    def for_options(self, options: Any) -> Chart:
        """This chart without the optional workloads that the component's `options` switch off."""
        left_out = set()
        for workload, option in self.meta.optional_workloads.items():
            value = getattr(options, option, None)
            if not isinstance(value, bool):
                raise ChartError(
                    f"{self.path / 'chart.yaml'}: optional_workloads: `{workload}` is switched by `{option}`, "
                    f"which is no true/false option of component `{self.meta.component}`; name one of its options"
                )
            if not value:
                left_out.add(workload)
        return Chart(self.path, self.meta.without(left_out), self.key) if left_out else self

    @cached_property
    def templates(self) -> list[str]:
        """Template names (`<key>/templates/<file>`), in a stable order."""
        folder = self.path / "templates"
        return sorted(f"{self.key}/templates/{p.name}" for p in folder.glob("*.yaml.j2"))


def load_charts(root: Path, own: bool = False) -> dict[tuple[str, str], Chart]:
    """Every chart under `root`, keyed by (component, implementation). `own`: a folder of the city's
    own charts, whose charts must implement one of the blueprint's components."""
    charts: dict[tuple[str, str], Chart] = {}
    for chart_yaml in sorted(root.glob("*/chart.yaml")):
        folder = chart_yaml.parent
        key = f"{folder.name}@{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]}" if own else None
        chart = Chart.load(folder, key)
        if own and chart.meta.component not in COMPONENT_IDS:
            raise ChartError(
                f"{chart_yaml}: component `{chart.meta.component}` is no component of the "
                f"blueprint; use one of {', '.join(sorted(COMPONENT_IDS))}"
            )
        _add(charts, chart)
    return charts


def _add(charts: dict[tuple[str, str], Chart], chart: Chart) -> None:
    key = (chart.meta.component, chart.meta.implementation)
    if key in charts:
        raise ChartError(
            f"{chart.path / 'chart.yaml'}: implementation {key[1]!r} of {key[0]!r} is also in "
            f"{charts[key].path / 'chart.yaml'}; rename one of the implementations"
        )
    charts[key] = chart


def own_chart_roots(listed: list[str], base_dir: Path | None) -> list[Path]:
    """The folders of the city's own charts, in search order: `listed` (the blueprint's
    `charts.paths`, relative to its folder), then MIMS_CHARTS_PATH (os.pathsep-separated, relative to
    the working folder). The shipped charts come before both."""
    base = base_dir or Path.cwd()
    from_env = [Path(p) for p in os.environ.get(CHARTS_PATH_VARIABLE, "").split(os.pathsep) if p]
    return [base / p for p in listed] + from_env


def all_charts(
    listed: list[str], base_dir: Path | None, shipped: dict[tuple[str, str], Chart] | None = None
) -> dict[tuple[str, str], Chart]:
    """The shipped charts (or `shipped`, a renderer's) and the city's own: a second chart for the same
    component and implementation is an error naming both files."""
    if shipped is None:
        shipped = _cached_charts(paths.charts_dir(), False, _stamp(paths.charts_dir()))
    charts = dict(shipped)
    for root in own_chart_roots(listed, base_dir):
        for chart in _cached_charts(root.resolve(), True, _stamp(root)).values():
            _add(charts, chart)
    return charts


def _stamp(root: Path) -> tuple:
    """What a cached reading of `root` depends on: its chart.yaml files and their modification times."""
    return tuple((str(p), p.stat().st_mtime_ns) for p in sorted(root.glob("*/chart.yaml")))


@lru_cache(maxsize=32)
def _cached_charts(root: Path, own: bool, stamp: tuple) -> dict[tuple[str, str], Chart]:
    """Blueprints are validated often (every command, the tests); chart.yaml files seldom change."""
    return load_charts(root, own)


def implementation_problems(data: Any, base_dir: Path | None) -> list[tuple[tuple[str | int, ...], str]]:
    """Every `implementation` the blueprint sets names a chart for its component, shipped or the
    city's own, as (field path, message). Reads the raw mapping, so these problems come together with
    the model's own; values the model rejects anyway are left to it."""
    data = data if isinstance(data, dict) else {}
    charts: dict[str, Any] = data.get("charts") if isinstance(data.get("charts"), dict) else {}
    paths = charts.get("paths")
    listed: list[Any] = paths if isinstance(paths, list) else []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, path in enumerate(listed):
        if isinstance(path, str) and path and not ((base_dir or Path.cwd()) / path).is_dir():
            problems.append(
                (
                    ("charts", "paths", i),
                    f"folder {path} does not exist next to the blueprint; give a folder that holds chart folders",
                )
            )
    for path in os.environ.get(CHARTS_PATH_VARIABLE, "").split(os.pathsep):
        if path and not Path(path).is_dir():
            problems.append(
                ((), f"{CHARTS_PATH_VARIABLE} names {path}, which is no folder; correct or unset the variable")
            )
    if problems or not all(isinstance(p, str) and p for p in listed):
        return problems
    available: dict[str, list[str]] = {}
    for component, implementation in all_charts(listed, base_dir):
        available.setdefault(component, []).append(implementation)
    for group, model in (("components", Components), ("addons", Addons)):
        sections: dict[str, Any] = data.get(group) if isinstance(data.get(group), dict) else {}
        for name, section in sections.items():
            impl = section.get("implementation") if isinstance(section, dict) else None
            if (
                name not in model.model_fields
                or not isinstance(impl, str)
                or not re.fullmatch(IMPLEMENTATION_PATTERN, impl)
            ):
                continue
            choices = sorted(available.get(name.replace("_", "-"), []))
            if impl in choices:
                continue
            message = f"no chart implements `{impl}` for {name}; available: {', '.join(f'`{c}`' for c in choices)}"
            guess = difflib.get_close_matches(impl, choices, n=1, cutoff=0.6)
            message += (
                f"; did you mean `{guess[0]}`?"
                if guess
                else "; a chart of your own goes in a folder named by `charts.paths` (docs/charts.md)"
            )
            problems.append(((group, name, "implementation"), message))
    return problems
