"""Operations: Prometheus scrapes every metrics endpoint of every enabled component and finds it up,
and has the alert rules loaded. Prometheus is not public; it is asked through the Kubernetes API
server's service proxy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from mims.verify.platform import Platform
from mims.verify.probe import Probe, expect

COMPONENT = "monitoring"
# Discovery (DNS, refreshed every 30 s) and scraping (every 30 s) catch up with a pod started or
# deleted a moment ago within this time.
SETTLE_S = 90


def probes(p: Platform) -> Iterator[Probe]:
    if not p.enabled(COMPONENT):
        return
    yield Probe("ops", COMPONENT, "every metrics endpoint is scraped and up", lambda: _targets(p))
    yield Probe(
        "ops",
        COMPONENT,
        "alert rules are loaded",
        lambda: _rules(p),
        needs=("every metrics endpoint is scraped and up",),
    )


def _api(p: Platform, path: str) -> dict:
    raw = p.core.connect_get_namespaced_service_proxy_with_path(
        "prometheus:9090", p.namespace(COMPONENT), path, _preload_content=False
    ).data  # type: ignore[attr-defined]  # unparsed: the urllib3 response
    return json.loads(raw)["data"]


def _expected(p: Platform) -> set[tuple[str, str]]:
    return {
        (component, metrics.workload)
        for component, chart in p.rendering.charts.items()
        for metrics in chart.meta.metrics
        if p.replicas(component, metrics.workload)
    }


def _targets(p: Platform) -> None:
    p.need_running(COMPONENT, "prometheus")
    expected = _expected(p)
    deadline = time.monotonic() + SETTLE_S
    # Waits for what a moment explains: a new pod not discovered (DNS) or scraped yet, a deleted pod
    # still discovered until DNS is asked again (refresh 30 s). What persists fails.
    while True:
        targets = _api(p, "api/v1/targets")["activeTargets"]
        found = {(t["labels"].get("component"), t["labels"].get("workload")) for t in targets}
        missing = sorted(f"{c}/{w}" for c, w in expected - found)
        down = sorted(
            f"{t['labels'].get('component')}/{t['labels'].get('workload')} "
            f"({t['health']}: {t.get('lastError') or 'not scraped yet'})"
            for t in targets
            if t["health"] != "up"
        )
        if (not missing and not down) or time.monotonic() > deadline:
            break
        time.sleep(3)
    expect(not missing, f"Prometheus does not scrape {', '.join(missing)}")
    expect(not down, f"targets not up after {SETTLE_S:.0f} s: {'; '.join(down)}")


def _rules(p: Platform) -> None:
    groups = _api(p, "api/v1/rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    expect(names, "Prometheus has no rules loaded")
    for wanted in ("ComponentDown", "ComponentDegraded"):
        expect(wanted in names, f"rule {wanted} is not loaded (loaded: {', '.join(sorted(names))})")
