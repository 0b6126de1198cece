"""Blueprint -> Kubernetes objects per layer. Pure: no cluster, no network, no Pulumi."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from mims import paths
from mims.blueprint.loader import LoadedBlueprint
from mims.charts.footprint import Footprint, footprint_of
from mims.charts.inputs import component_inputs
from mims.charts.meta import Chart, all_charts, load_charts
from mims.charts.mirror import Mirror
from mims.charts.network import network_policies, tcp_exposed
from mims.charts.overrides import apply_overrides, unmatched_overrides
from mims.charts.scrape import metrics_services, scrape_targets
from mims.errors import ChartError
from mims.layers import Layer, load_layers

FOUNDATION = "foundation"
COMMON_LABELS = {"app.kubernetes.io/part-of": "mims", "app.kubernetes.io/managed-by": "mims"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "IngressClass",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "ClusterIssuer",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


@dataclass
class LayerRender:
    layer: Layer
    objects: list[dict] = field(default_factory=list)


@dataclass
class Rendering:
    loaded: LoadedBlueprint
    layers: list[LayerRender]
    charts: dict[str, Chart]
    footprints: dict[str, Footprint]
    endpoints: dict[str, ResolvedEndpoint] = field(default_factory=dict)
    mirror: Mirror | None = None

    def public_urls(self) -> list[tuple[ResolvedEndpoint, str]]:
        """Every public endpoint with the URL people use, in component order."""
        bp = self.loaded.blueprint
        scheme = "http" if bp.tls.mode == "none" else "https"
        return [
            (
                e,
                f"{e.scheme}://{e.host}.{bp.domain}:{e.public_port}"
                if e.protocol == "tcp"
                else f"{scheme}://{e.host}.{bp.domain}{e.path}",
            )
            for e in self.endpoints.values()
            if e.public and e.host
        ]

    def objects(self) -> list[dict]:
        return [obj for layer in self.layers for obj in layer.objects]

    def total(self) -> Footprint:
        total = Footprint()
        for fp in self.footprints.values():
            total.add(fp)
        return total


@dataclass(frozen=True)
class ResolvedEndpoint:
    component: str
    namespace: str
    name: str
    workload: str
    port: int
    description: str
    public: bool
    host: str | None
    path: str
    writes_need_token: bool
    protocol: str = "http"
    reads_need_token: bool = False
    public_port: int | None = None
    scheme: str | None = None
    hidden_paths: tuple[str, ...] = ()

    @property
    def service_host(self) -> str:
        return f"{self.workload}.{self.namespace}.svc.cluster.local"

    @property
    def internal_url(self) -> str:
        return f"http://{self.service_host}:{self.port}"


class Renderer:
    """Holds the charts, layers and Jinja environment so many blueprints render without reloading."""

    def __init__(self, charts_root: Path | None = None, layers_root: Path | None = None):
        self.charts_root = charts_root or paths.charts_dir()
        self.layers = load_layers(layers_root or paths.layers_dir())
        self.charts = load_charts(self.charts_root)
        self._binary_cache: dict[tuple[Path, str], list[tuple[str, str]]] = {}
        self._loader = _ChartsLoader(self.charts_root)
        self.env = jinja2.Environment(
            loader=self._loader,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
            bytecode_cache=_template_cache(),
        )
        self.env.filters["quote"] = _quote
        self.env.filters["to_json"] = lambda v, indent=None: json.dumps(
            v, ensure_ascii=False, indent=indent, sort_keys=True
        )
        self.env.filters["sha256"] = lambda v: hashlib.sha256(str(v).encode()).hexdigest()
        self.env.globals["file"] = _render_file
        self.env.globals["binary_files"] = self._binary_files
        self.env.globals["fail"] = _fail

    def chart_for(
        self, component: str, implementation: str, charts: dict[tuple[str, str], Chart] | None = None
    ) -> Chart:
        try:
            return (charts or self.charts)[(component, implementation)]
        except KeyError:
            raise ChartError(
                f"no chart for component `{component}` implementation `{implementation}` "
                f"under {self.charts_root} or the blueprint's `charts.paths`"
            ) from None

    @jinja2.pass_context
    def _binary_files(self, ctx: jinja2.runtime.Context, pattern: str) -> list[tuple[str, str]]:
        """(file name, base64) of the current chart's `files/<pattern>`, sorted: files shipped as they
        are (wheels, archives) for ConfigMaps' `binaryData`. Read once per renderer."""
        folder = self._loader.folder(_chart_folder(ctx)) / "files"
        key = (folder, pattern)
        if key not in self._binary_cache:
            self._binary_cache[key] = [
                (path.name, base64.b64encode(path.read_bytes()).decode("ascii"))
                for path in sorted(folder.glob(pattern))
                if path.is_file()
            ]
        return self._binary_cache[key]

    def render(self, loaded: LoadedBlueprint) -> Rendering:
        bp = loaded.blueprint
        sections = bp.enabled_components()
        available = all_charts(bp.charts.paths, loaded.base_dir, self.charts)
        charts = {
            c: self.chart_for(c, s.implementation, available).for_options(getattr(s, "options", None))
            for c, s in sections.items()
        }
        self._loader.add(charts.values())
        namespaces = {c: f"{bp.city.name}-{c}" for c in charts}
        expose_tcp = tcp_exposed(bp.tls.mode)
        endpoints = {
            f"{c}/{e.name}": ResolvedEndpoint(
                c,
                namespaces[c],
                e.name,
                e.workload,
                e.port,
                e.description,
                e.public and (e.protocol == "http" or expose_tcp),
                e.host,
                e.path,
                e.writes_need_token,
                e.protocol,
                e.reads_need_token,
                e.public_port,
                e.scheme,
                tuple(e.hidden_paths),
            )
            for c, chart in charts.items()
            for e in chart.meta.endpoints
        }
        _check_public_ports(endpoints.values())
        metrics = scrape_targets(charts, namespaces, bp.budget.profile)
        scheme = "http" if bp.tls.mode == "none" else "https"
        shared = {
            "scheme": scheme,
            "public_url": lambda host, path="/": f"{scheme}://{host}.{bp.domain}{path}",
            "blueprint": bp,
            "city": bp.city,
            "domain": bp.domain,
            "environment": bp.environment,
            "profile": bp.budget.profile,
            "tls": bp.tls,
            "namespaces": namespaces,
            "enabled": sorted(charts),
            "endpoints": endpoints,
            "metrics_targets": metrics,
            "image_pull_policy": {"always": "Always", "if-not-present": "IfNotPresent"}[bp.images.pull],
        }
        policies = network_policies(charts, namespaces, bp.tls.mode, bp.backup.enabled)
        services = metrics_services(metrics, bp.city.name)
        mirror = Mirror(bp.images.mirror) if bp.images.mirror else None

        owned: list[tuple[str, dict]] = []
        for component, chart in charts.items():
            own = self._chart_context(chart, component, namespaces[component], sections[component], mirror)
            context = dict(shared, **own)
            context.update(component_inputs(component, loaded))
            generated = [_finish(obj, context) for obj in policies.get(component, []) + services.get(component, [])]
            for obj in self._render_chart(chart, context) + generated:
                owned.append((component, obj))

        objects = [obj for _, obj in owned]
        matched = apply_overrides(loaded, objects)
        owned = [(component, obj) for (component, _), obj in zip(owned, objects)]
        footprints = {c: footprint_of([o for oc, o in owned if oc == c]) for c in charts}

        # The foundation (namespaces, quotas) is sized from what the components turned out to need.
        foundation = self.chart_for(FOUNDATION, "default")
        context = dict(shared, **self._chart_context(foundation, FOUNDATION, None, None, mirror), footprints=footprints)
        foundation_objects = self._render_chart(foundation, context)
        matched |= apply_overrides(loaded, foundation_objects, skip=matched)
        unmatched_overrides(loaded, matched)
        owned = [(FOUNDATION, o) for o in foundation_objects] + owned
        if mirror:
            mirror.rename_containers([o for _, o in owned])

        layers = []
        for layer in self.layers:
            members = set(layer.components)
            layers.append(LayerRender(layer, [o for c, o in owned if c in members]))
        return Rendering(loaded, layers, charts, footprints, endpoints, mirror)

    @staticmethod
    def _chart_context(
        chart: Chart, component: str, namespace: str | None, section: Any, mirror: Mirror | None
    ) -> dict:
        """`images` are the references the templates write, already renamed to the mirror if any."""
        return {
            "chart": chart.meta,
            "component": component,
            "namespace": namespace,
            "options": getattr(section, "options", None),
            "images": {
                name: mirror.rename(image.ref) if mirror else image.ref for name, image in chart.meta.images.items()
            },
            "image_digests": {name: bool(image.digest) for name, image in chart.meta.images.items()},
        }

    def _render_chart(self, chart: Chart, context: dict) -> list[dict]:
        profile = context["profile"]
        context["sizes"] = {w: by_profile[profile] for w, by_profile in chart.meta.workloads.items()}
        objects = []
        for template_name in chart.templates:
            try:
                text = self.env.get_template(template_name).render(context)
            except jinja2.TemplateError as exc:
                where = f"{getattr(exc, 'filename', None) or template_name}:{getattr(exc, 'lineno', '?')}"
                raise ChartError(f"{where}: {exc}") from None
            try:
                docs = list(yaml.load_all(text, Loader=_Loader))
            except yaml.YAMLError as exc:
                raise ChartError(f"{template_name} rendered invalid YAML: {exc}") from None
            for doc in docs:
                if doc is None:
                    continue
                if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
                    raise ChartError(f"{template_name} rendered something that is not a Kubernetes object")
                objects.append(_finish(doc, context))
        return objects


class _ChartsLoader(jinja2.BaseLoader):
    """Template names start with a chart's key (`scorpio/templates/...`); shipped charts and the
    macros in `_lib/` are under the charts root, a city's own charts wherever their folder is."""

    def __init__(self, root: Path):
        self.root = root
        self.shipped = jinja2.FileSystemLoader(str(root))
        self.own: dict[str, jinja2.FileSystemLoader] = {}

    def add(self, charts) -> None:
        for chart in charts:
            if chart.key != chart.path.name:
                self.own.setdefault(chart.key, jinja2.FileSystemLoader(str(chart.path)))

    def folder(self, key: str) -> Path:
        own = self.own.get(key)
        return Path(own.searchpath[0]) if own else self.root / key

    def get_source(self, environment: jinja2.Environment, template: str):
        key, _, rest = template.partition("/")
        if key in self.own:
            return self.own[key].get_source(environment, rest)
        return self.shipped.get_source(environment, template)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _finish(obj: dict, context: dict) -> dict:
    meta = obj["metadata"]
    if obj["kind"] not in CLUSTER_SCOPED and context["namespace"] and "namespace" not in meta:
        meta["namespace"] = context["namespace"]
    labels = meta.setdefault("labels", {})
    for key, value in COMMON_LABELS.items():
        labels.setdefault(key, value)
    labels.setdefault("mims.io/city", context["city"].name)
    labels.setdefault("mims.io/component", context["component"])
    return obj


def _template_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates are cached per user (keyed by each template's checksum): compiling the
    charts costs more than rendering them."""
    folder = paths.cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def _check_public_ports(endpoints) -> None:
    """Two public tcp endpoints cannot share a port of the one public entry point."""
    seen: dict[int, ResolvedEndpoint] = {}
    for e in endpoints:
        if e.public and e.protocol == "tcp":
            if e.public_port in seen:
                other = seen[e.public_port]
                raise ChartError(
                    f"public port {e.public_port} is claimed by {other.component}/{other.name} and "
                    f"{e.component}/{e.name}; give one of them another `public_port` in its chart.yaml"
                )
            seen[e.public_port] = e


# Characters json.dumps leaves as they are but YAML does not read back raw in a double-quoted
# scalar: DEL and the C1 controls are not allowed, the line and paragraph separators fold into
# spaces, a byte order mark is dropped.
_YAML_UNPRINTABLE = {c: f"\\u{c:04x}" for c in [*range(0x7F, 0xA0), 0x2028, 0x2029, 0xFEFF]}


def _quote(value) -> str:
    """A JSON string literal that is also a valid YAML double-quoted scalar."""
    return json.dumps(value, ensure_ascii=False).translate(_YAML_UNPRINTABLE)


def _chart_folder(ctx: jinja2.runtime.Context) -> str:
    """The chart of the template being rendered: its name's first part (templates load by name)."""
    assert ctx.name is not None
    return ctx.name.split("/", 1)[0]


def _fail(message: str):
    """Stop rendering with a chart author's message (for rules the blueprint model cannot express)."""
    raise ChartError(message)


@jinja2.pass_context
def _render_file(ctx: jinja2.runtime.Context, name: str) -> str:
    """Render `files/<name>` of the current chart with the same context (config files in ConfigMaps)."""
    folder = _chart_folder(ctx)
    return ctx.environment.get_template(f"{folder}/files/{name}").render(ctx.get_all())
