"""Per-pod scraping: the metrics targets Prometheus reads, and a headless Service for each.

A scrape through a workload's ClusterIP Service reaches one pod that kube-proxy picks, so with
several replicas counters jump between pods and a dead pod hides behind a live one. A headless
Service (no cluster IP) makes the cluster DNS answer with one A record per endpoint instead
(Kubernetes DNS-Based Service Discovery specification, kubernetes/dns docs/specification.md,
section 2.4.1), which Prometheus's `dns_sd_configs` turns into one target per pod: per-pod
scraping without any Kubernetes API access for Prometheus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from mims.blueprint.model import Profile
from mims.charts.meta import Chart
from mims.charts.network import NAME_LABEL

INSTANCE_LABEL = "app.kubernetes.io/instance"  # with NAME_LABEL, what `_lib/k8s.j2` `selector` puts on pods


@dataclass(frozen=True)
class ScrapeTarget:
    """One `metrics` entry of an enabled chart, as the monitoring chart's templates read it."""

    component: str
    namespace: str
    workload: str
    port: int
    path: str
    replicas: int  # pods the blueprint's profile runs; the alert rules expect that many to answer
    job: str  # Prometheus job name, unique over the platform

    @property
    def service(self) -> str:
        return f"{self.workload}-metrics"

    @property
    def dns_name(self) -> str:
        """Fully qualified (trailing dot), so the resolver asks once instead of trying every
        search domain of the pod's resolv.conf first."""
        return f"{self.service}.{self.namespace}.svc.cluster.local."


def scrape_targets(charts: dict[str, Chart], namespaces: dict[str, str], profile: Profile) -> list[ScrapeTarget]:
    """Every `metrics` entry of the enabled charts given as {component: chart}, in chart order."""
    entries = [(c, chart, m) for c, chart in charts.items() for m in chart.meta.metrics]
    per_workload = Counter((c, m.workload) for c, _, m in entries)
    targets = []
    for component, chart, metric in entries:
        job = f"{component}/{metric.workload}"
        if per_workload[(component, metric.workload)] > 1:
            job += f":{metric.port}"
        replicas = chart.meta.workloads[metric.workload][profile].replicas
        targets.append(
            ScrapeTarget(component, namespaces[component], metric.workload, metric.port, metric.path, replicas, job)
        )
    return targets


def metrics_services(targets: list[ScrapeTarget], city: str) -> dict[str, list[dict]]:
    """Headless Services per component id: one per metrics workload, with each of its metrics ports.

    Not-ready pods are published too (`publishNotReadyAddresses`): a pod that is starting, failing
    its readiness probe or crash-looping keeps its A record, so Prometheus scrapes it and `up` says
    0 instead of the pod silently dropping out of the targets. Nothing but Prometheus uses these
    Services, so no traffic reaches a pod that is not ready."""
    ports: dict[tuple[str, str, str, str], set[int]] = defaultdict(set)
    for t in targets:
        ports[(t.component, t.namespace, t.service, t.workload)].add(t.port)
    out: dict[str, list[dict]] = defaultdict(list)
    for (component, namespace, service, workload), numbers in ports.items():
        out[component].append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": namespace},
                "spec": {
                    "clusterIP": "None",
                    "publishNotReadyAddresses": True,
                    "selector": {NAME_LABEL: workload, INSTANCE_LABEL: city},
                    "ports": [
                        {"name": f"metrics-{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in sorted(numbers)
                    ],
                },
            }
        )
    return out
