"""One blueprint on one cluster: what `plan`, `up`, `status` and `destroy` share. Loads and renders
the blueprint, applies the budget guard, resolves the cluster and opens the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mims.blueprint import load_blueprint
from mims.charts.render import Renderer, Rendering
from mims.cluster import ClusterConnection, resolve
from mims.console import err
from mims.cost.guard import check_cap
from mims.cost.model import estimate
from mims.engine.orchestrator import Engine
from mims.engine.program import Target
from mims.engine.progress import Reporter
from mims.engine.readiness import WorkloadState, workload_states


@dataclass
class Deployment:
    rendering: Rendering
    cluster: ClusterConnection
    engine: Engine

    def workloads(self) -> list[WorkloadState]:
        return workload_states(self.cluster.api_client(), self.rendering.objects())


def open_deployment(blueprint: Path, *, kubeconfig: Path | None = None, context: str | None = None,
                    allow_over_budget: bool | None = None, create_cluster: bool = False,
                    quiet: bool = False) -> Deployment:
    """`allow_over_budget=None` skips the budget guard (status, destroy); `create_cluster` starts the
    simulated cluster when the blueprint targets one that is not running (up)."""
    rendering = Renderer().render(load_blueprint(blueprint))
    if allow_over_budget is not None:
        check_cap(estimate(rendering), allow_over_budget)
    reporter = Reporter(quiet=quiet)
    cluster = resolve(rendering.loaded.blueprint.cluster, kubeconfig=kubeconfig, context=context,
                      create_sim=create_cluster, progress=reporter.say)
    if cluster.kind == "sim" and not quiet:
        err.print(f"cluster: simulated cluster `{cluster.name}` (kubeconfig {cluster.kubeconfig}); "
                  f"pods are scheduled but never run", markup=False)
    engine = Engine(rendering, Target(cluster.kubeconfig, cluster.context), reporter=reporter)
    return Deployment(rendering, cluster, engine)
