"""One blueprint on one cluster: what `plan`, `up`, `status` and `destroy` share. Loads and renders
the blueprint, applies the budget guard, resolves the cluster and opens the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mims.blueprint import load_blueprint
from mims.charts.quantity import bytes_of, cpu_millicores
from mims.charts.render import Renderer, Rendering
from mims.cluster import ClusterConnection, SimCluster, resolve
from mims.cost.guard import check_cap
from mims.cost.model import estimate
from mims.engine.orchestrator import Engine
from mims.engine.program import Target
from mims.engine.progress import Reporter
from mims.engine.readiness import WorkloadState, workload_states
from mims.errors import ClusterError
from mims.progress import Progress


@dataclass
class Deployment:
    rendering: Rendering
    cluster: ClusterConnection
    engine: Engine

    def workloads(self) -> list[WorkloadState]:
        return workload_states(self.cluster.api_client(), self.rendering.objects())


def open_deployment(
    blueprint: Path,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    allow_over_budget: bool | None = None,
    create_cluster: bool = False,
    progress: Progress | None = None,
) -> Deployment:
    """`allow_over_budget=None` skips the budget guard (status, destroy); `create_cluster` starts the
    simulated cluster when the blueprint targets one that is not running (up). Progress goes to stderr
    unless `progress` says otherwise."""
    rendering = Renderer().render(load_blueprint(blueprint))
    if allow_over_budget is not None:
        check_cap(estimate(rendering), allow_over_budget)
    reporter = Reporter(progress)
    node = sim_node_for(rendering)
    cluster = resolve(
        rendering.loaded.blueprint.cluster,
        kubeconfig=kubeconfig,
        context=context,
        create_sim=create_cluster,
        sim_node=node,
        progress=reporter,
    )
    if cluster.kind == "sim":
        _check_sim_size(cluster, node)
    if cluster.kind == "sim":
        reporter.say(
            f"cluster: simulated cluster `{cluster.name}` (kubeconfig {cluster.kubeconfig}); "
            f"pods are scheduled but never run"
        )
    engine = Engine(rendering, Target(cluster.kubeconfig, cluster.context), reporter=reporter)
    return Deployment(rendering, cluster, engine)


# Node sizes of simulated clusters: the minimal-50k node first, so its scheduler enforces that
# profile's requests as one real node would; larger blueprints get the next size that fits.
SIM_NODE_SIZES = [("4", "16Gi"), ("8", "32Gi"), ("16", "64Gi"), ("32", "128Gi")]


def sim_node_for(rendering: Rendering) -> tuple[str, str]:
    total = rendering.total()
    for cpu, memory in SIM_NODE_SIZES:
        if cpu_millicores(cpu) >= total.cpu_request_m and bytes_of(memory) >= total.memory_request:
            return cpu, memory
    return SIM_NODE_SIZES[-1]


def _check_sim_size(cluster: ClusterConnection, node: tuple[str, str]) -> None:
    """A simulated node too small for the blueprint leaves pods Pending until Pulumi times out."""
    size = SimCluster(cluster.name).node_size()
    if size is None:
        return
    cpu, memory = size
    if cpu_millicores(cpu) < cpu_millicores(node[0]) or bytes_of(memory) < bytes_of(node[1]):
        raise ClusterError(
            f"simulated cluster `{cluster.name}` has a node of {cpu} CPU / "
            f"{memory}; this blueprint needs {node[0]} CPU / {node[1]}. Run "
            f"`mims cluster delete --name {cluster.name} --yes` and deploy again, or deploy "
            f"to another cluster with --context"
        )
