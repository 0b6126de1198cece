"""One blueprint on one cluster: what `plan`, `up`, `status` and `destroy` share. Loads and renders
the blueprint, applies the budget guard, resolves the cluster and opens the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mims.blueprint import load_blueprint
from mims.charts.quantity import bytes_of, cpu_millicores
from mims.charts.render import Renderer, Rendering
from mims.cluster import ClusterConnection, NodeCluster, SimCluster, resolve
from mims.cost.guard import check_cap
from mims.cost.model import estimate
from mims.engine.datasafety import DataChange, data_changes, protect_data
from mims.engine.orchestrator import Engine
from mims.engine.program import Target
from mims.engine.progress import Reporter
from mims.engine.readiness import WorkloadState, workload_states
from mims.errors import ClusterError, NotVerifiable
from mims.progress import Progress


@dataclass
class Placement:
    """A rendered blueprint and the cluster it is (or goes) on: what `mims verify` needs; no engine."""

    rendering: Rendering
    cluster: ClusterConnection


@dataclass
class Deployment(Placement):
    engine: Engine

    def workloads(self) -> list[WorkloadState]:
        return workload_states(self.cluster.api_client(), self.rendering.objects())

    def data_changes(self) -> list[DataChange]:
        """What the blueprint would change of the databases' data (shown by `plan`, guarded by `up`)."""
        return data_changes(self.cluster.api_client(), self.rendering)

    def protect_data(self, *, allow_data_change: bool, backup_first: bool, say: Callable[[str], None]) -> None:
        """Before an update: refuses changes that would lose data, backs up databases whose image
        changes (mims.engine.datasafety)."""
        protect_data(
            self.cluster.api_client(),
            self.rendering,
            allow_data_change=allow_data_change,
            backup_first=backup_first,
            runs_containers=self.cluster.kind != "sim",
            say=say,
        )


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
    reporter = Reporter(progress)
    placement = place(
        blueprint,
        kubeconfig=kubeconfig,
        context=context,
        allow_over_budget=allow_over_budget,
        create_cluster=create_cluster,
        reporter=reporter,
    )
    engine = Engine(
        placement.rendering, Target(placement.cluster.kubeconfig, placement.cluster.context), reporter=reporter
    )
    return Deployment(placement.rendering, placement.cluster, engine)


def place(
    blueprint: Path,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    allow_over_budget: bool | None = None,
    create_cluster: bool = False,
    reporter: Reporter | None = None,
    live_only: bool = False,
) -> Placement:
    """The blueprint rendered and its cluster resolved (and checked for size), without Pulumi.
    `live_only` (verify: it needs running containers) refuses the simulated cluster before looking for it."""
    reporter = reporter or Reporter()
    rendering = Renderer().render(load_blueprint(blueprint))
    if allow_over_budget is not None:
        check_cap(estimate(rendering), allow_over_budget)
    if live_only and rendering.loaded.blueprint.cluster.target == "sim" and kubeconfig is None and context is None:
        raise NotVerifiable.simulated_cluster()
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
        _check_local_size(SimCluster(cluster.name), node)
        reporter.say(
            f"cluster: simulated cluster `{cluster.name}` (kubeconfig {cluster.kubeconfig}); "
            f"pods are scheduled but never run"
        )
    elif cluster.kind == "node":
        total = rendering.total()
        _check_local_size(NodeCluster(cluster.name), (f"{total.cpu_request_m}m", str(total.memory_request)))
        reporter.say(f"cluster: real-node cluster `{cluster.name}` (kubeconfig {cluster.kubeconfig})")
    return Placement(rendering, cluster)


# Node sizes of simulated clusters: the minimal-50k node first, so its scheduler enforces that
# profile's requests as one real node would; larger blueprints get the next size that fits.
SIM_NODE_SIZES = [("4", "16Gi"), ("8", "32Gi"), ("16", "64Gi"), ("32", "128Gi")]


def sim_node_for(rendering: Rendering) -> tuple[str, str]:
    total = rendering.total()
    for cpu, memory in SIM_NODE_SIZES:
        if cpu_millicores(cpu) >= total.cpu_request_m and bytes_of(memory) >= total.memory_request:
            return cpu, memory
    return SIM_NODE_SIZES[-1]


def _check_local_size(cluster: SimCluster | NodeCluster, needed: tuple[str, str]) -> None:
    """A node too small for the blueprint's requests leaves pods Pending until Pulumi times out."""
    size = cluster.node_size()
    if size is None:
        return
    cpu, memory = size
    if cpu_millicores(cpu) < cpu_millicores(needed[0]) or bytes_of(memory) < bytes_of(needed[1]):
        fix = (
            f"Run `mims cluster delete --name {cluster.name} --yes` and deploy again"
            if isinstance(cluster, SimCluster)
            else "Choose a smaller budget.profile or a larger machine"
        )
        raise ClusterError(
            f"{cluster.label} has a node of {cpu} CPU / {memory}; this blueprint requests "
            f"{needed[0]} CPU / {needed[1]}. {fix}, or deploy to another cluster with --context"
        )
