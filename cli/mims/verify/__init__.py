"""`mims verify`: live proof that each MIM works on the deployed platform. Probes go through the
public endpoints, as the city's users and partners would, and, for what only a pod can see, through
a short-lived probe Job (verify/incluster.py). Families live in verify/probes, one module per MIM."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from types import ModuleType

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from mims.charts.render import Rendering
from mims.cluster import ClusterConnection
from mims.errors import ClusterError, NotVerifiable, UsageError
from mims.verify.platform import Platform
from mims.verify.probe import Probe, run_probes
from mims.verify.probes import catalogue, context, ingestion, models, monitoring, register, security
from mims.verify.public import PublicClient
from mims.verify.report import MIMS, Report, Result, Status

FAMILIES: list[ModuleType] = [context, ingestion, models, catalogue, register, security, monitoring]
# The component each MIM's probes need; a MIM whose component is off is reported as skipped.
MIM_COMPONENTS = {
    "MIM1": "broker",
    "MIM2": "data-models",
    "MIM3": "catalogue",
    "MIM5": "ai-registry",
    "ops": "monitoring",
}


def verify(
    rendering: Rendering,
    cluster: ClusterConnection,
    *,
    address: str | None = None,
    ca_file: str | None = None,
    only: list[str] | None = None,
    on_result: Callable[[Result], None] = lambda r: None,
) -> Report:
    """Runs every probe of every enabled component (of the MIMs in `only`, when given)."""
    check_only(only)
    if cluster.kind == "sim":
        raise NotVerifiable.simulated_cluster()
    api = cluster.api_client()
    bp = rendering.loaded.blueprint
    try:
        _need_deployed(api, bp.city.name)
        entrance = address or entrance_address(api, rendering)
    except (ApiException, HTTPError, OSError) as error:
        raise ClusterError(
            f"cannot ask the cluster ({cluster.kind} `{cluster.name}`) about the platform: {error}"
        ) from None
    scheme = "http" if bp.tls.mode == "none" else "https"
    public = PublicClient(bp.domain, scheme, entrance, ca_file)
    platform = Platform(rendering, api, public, run_id=secrets.token_hex(3))
    report = Report(str(rendering.loaded.path))
    wanted = set(only or MIMS)
    for mim, component in MIM_COMPONENTS.items():
        if mim in wanted and component not in rendering.charts:
            result = Result(mim, component, "all probes", Status.SKIP, f"{component} is not enabled in the blueprint")
            report.results.append(result)
            on_result(result)
    try:
        for family in FAMILIES:
            if hasattr(family, "sweep"):
                try:
                    family.sweep(platform)
                except Exception:  # what stops a sweep stops that family's probes, which say so
                    pass
        probes = [probe for family in FAMILIES for probe in family.probes(platform)]
        report.results += run_probes(selected(probes, wanted), on_result)
    finally:
        for cleanup in reversed(platform.cleanups):
            try:
                cleanup()
            except Exception:  # what is left, the next run's sweep removes
                pass
    return report


def selected(probes: list[Probe], wanted: set[str]) -> list[Probe]:
    """The probes of the wanted MIMs and those they build on (MIM2's broker probe needs MIM1's create)."""
    keep = {p.name for p in probes if p.mim in wanted}
    for probe in reversed(probes):
        if probe.name in keep:
            keep.update(probe.needs)
    return [p for p in probes if p.name in keep]


def check_only(only: list[str] | None) -> None:
    unknown = sorted(set(only or []) - set(MIMS))
    if unknown:
        raise UsageError(f"--only {', '.join(unknown)}: not a MIM mims verifies (choose from {', '.join(MIMS)})")


def entrance_address(api: ApiClient, rendering: Rendering) -> str | None:
    """Where the platform's LoadBalancer Service (gateway, or the ingress controller) answers, as the
    cluster reports it; None (ask DNS) when it has none yet or the blueprint has no such Service."""
    core = client.CoreV1Api(api)
    for obj in rendering.objects():
        if obj["kind"] == "Service" and obj["spec"].get("type") == "LoadBalancer":
            status = core.read_namespaced_service(obj["metadata"]["name"], obj["metadata"]["namespace"]).status
            balancer = status.load_balancer if status else None
            for ingress in (balancer.ingress or []) if balancer else []:
                if ingress.ip or ingress.hostname:
                    return ingress.ip or ingress.hostname
    return None


def _need_deployed(api: ApiClient, city: str) -> None:
    selector = f"app.kubernetes.io/managed-by=mims,mims.io/city={city}"
    if not client.CoreV1Api(api).list_namespace(label_selector=selector).items:
        raise NotVerifiable(f"the platform of `{city}` is not deployed on this cluster; run `mims up` first")
