"""`mims cluster create|status|stop|delete|load-images`: the cluster on this machine mims deploys to
when a blueprint's `cluster.target` is `sim` (simulated), `node` (a real node) or `kind`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from mims.cluster import KindCluster, KindStatus, LocalStatus, NodeCluster, SimCluster, local_cluster
from mims.commands.options import ClusterName, Quiet, Yes, json_flag
from mims.commands.options import KindCluster as Kind
from mims.console import interactive, output_format, show
from mims.errors import UsageError
from mims.progress import progress_lines

CreateJson = Annotated[bool, json_flag("the cluster's status")]
StatusJson = Annotated[bool, json_flag("the status")]
ImagesJson = Annotated[bool, json_flag("the imported image names")]


def register(app: typer.Typer) -> None:
    cluster_app = typer.Typer(
        help="Create, inspect, stop and delete the simulated, real-node or kind cluster mims deploys to.",
        no_args_is_help=True,
    )
    cluster_app.command("create")(create)
    cluster_app.command("status")(status)
    cluster_app.command("stop")(stop)
    cluster_app.command("delete")(delete)
    cluster_app.command("load-images")(load_images)
    app.add_typer(cluster_app, name="cluster")


def create(
    sim: bool = typer.Option(
        False,
        "--sim",
        help="A simulated cluster: real API server, kwok instead of kubelets, pods never run (the default).",
    ),
    node: bool = typer.Option(
        False, "--node", help="A real single-node cluster on this Linux machine: pods run (needs root)."
    ),
    kind: bool = typer.Option(False, "--kind", help="A kind cluster (needs kind and Docker or Podman)."),
    name: ClusterName = "mims",
    cpu: str = typer.Option(None, "--cpu", help="CPUs of a new simulated cluster's node [default: 4]."),
    memory: str = typer.Option(None, "--memory", help="Memory of a new simulated cluster's node [default: 16Gi]."),
    node_ip: str = typer.Option(
        None, "--node-ip", help="Address of a real node [default: the one of the default route]."
    ),
    install_packages: bool = typer.Option(
        False, "--install-packages", help="Install the system packages a real node needs (containerd, runc ...)."
    ),
    as_json: CreateJson = False,
    quiet: Quiet = False,
) -> None:
    """Create a cluster, or start a stopped one again; a running one is left as it is."""
    if sum((sim, node, kind)) > 1:
        raise UsageError("--sim, --node and --kind exclude each other")
    if (kind or node) and (cpu or memory):
        raise UsageError("--cpu and --memory size a simulated cluster's node; other nodes have the machine's")
    if not node and (node_ip or install_packages):
        raise UsageError("--node-ip and --install-packages are for a real node (--node)")
    fmt = output_format(as_json)
    progress = progress_lines(quiet)
    started = time.monotonic()
    result: LocalStatus | KindStatus
    if kind:
        result = KindCluster(name).create(progress=progress)
    elif node:
        result = NodeCluster(name).create(node_ip=node_ip, install_packages=install_packages, progress=progress)
    else:
        result = SimCluster(name).create(cpu=cpu, memory=memory, progress=progress)
    seconds = round(time.monotonic() - started, 1)
    show(
        fmt,
        data=lambda: _as_dict(result) | {"seconds": seconds},
        table=lambda: [
            *_lines(result),
            f"use it:      export KUBECONFIG={result.kubeconfig}   (then: kubectl get nodes)",
        ],
    )


def status(
    kind: Kind = False,
    name: ClusterName = "mims",
    as_json: StatusJson = False,
) -> None:
    """Show whether the cluster runs, where its API and kubeconfig are, and what it uses."""
    fmt = output_format(as_json)
    result: LocalStatus | KindStatus = KindCluster(name).status() if kind else local_cluster(name).status()
    show(fmt, data=lambda: _as_dict(result), table=lambda: _lines(result))


def stop(
    name: ClusterName = "mims",
    quiet: Quiet = False,
) -> None:
    """Stop a simulated or real-node cluster's processes (and pods) and keep its data; `create` starts
    it again."""
    progress = progress_lines(quiet)
    cluster = local_cluster(name)
    if cluster.stop():
        progress.say(
            f"stopped {cluster.label}; `mims cluster create {cluster.CREATE_FLAG} --name {name}` starts it again"
        )
    else:
        progress.say(f"{cluster.label} was not running")


def delete(
    kind: Kind = False,
    name: ClusterName = "mims",
    yes: Yes = False,
    quiet: Quiet = False,
) -> None:
    """Delete a cluster and everything deployed to it."""
    progress = progress_lines(quiet)
    target = KindCluster(name) if kind else local_cluster(name)
    label = f"kind cluster `{name}`" if isinstance(target, KindCluster) else target.label
    if not target.exists():
        progress.say(f"no {label}; nothing to delete")
        return
    if not yes:
        if not interactive():
            raise UsageError(f"deleting {label} needs --yes (no terminal to confirm on)")
        typer.confirm(f"Delete {label} and everything deployed to it?", abort=True)
    target.delete()
    progress.say(f"deleted {label}")


def load_images(
    archives: Annotated[
        list[Path], typer.Argument(help="OCI or docker image archives (.tar), e.g. from `docker save`.")
    ],
    name: ClusterName = "mims",
    as_json: ImagesJson = False,
    quiet: Quiet = False,
) -> None:
    """Import image archives into a real node's containerd, for nodes that cannot pull from registries."""
    cluster = local_cluster(name)
    if not isinstance(cluster, NodeCluster):
        raise UsageError(f"{cluster.label} runs no containers; load-images is for a real node (--node)")
    imported = cluster.load_images(archives, progress_lines(quiet))
    show(output_format(as_json), data=lambda: {"images": imported}, table=lambda: imported)


def _as_dict(result: LocalStatus | KindStatus) -> dict:
    return {"type": "kind"} | result.as_dict() if isinstance(result, KindStatus) else result.as_dict()


def _lines(result: LocalStatus | KindStatus) -> Iterator[str]:
    """The status for people, line by line."""
    if isinstance(result, KindStatus):
        if not result.exists:
            yield f"kind cluster `{result.name}`: not created (mims cluster create --kind)"
            return
        yield (
            f"kind cluster `{result.name}`: {result.nodes} node{'s' if result.nodes != 1 else ''}, "
            f"context {result.context}"
        )
        yield f"kubeconfig:  {result.kubeconfig}"
        return
    label, flag = ("real-node cluster", "--node") if result.type == "node" else ("simulated cluster", "--sim")
    if result.state == "missing":
        yield f"{label} `{result.name}`: not created (mims cluster create {flag})"
        return
    lines = [f"{label} `{result.name}`: {result.state}"]
    if result.api_url:
        lines.append(f"API:         {result.api_url}")
    lines.append(f"kubeconfig:  {result.kubeconfig}")
    if result.nodes is not None:
        lines.append(f"nodes:       {result.nodes} ({result.node_cpu} CPU, {result.node_memory} each)")
    if result.rss_mib is not None:
        lines.append(f"memory:      {result.rss_mib:.0f} MiB resident")
    for p in result.processes:
        memory = f", {p.rss_mib:.0f} MiB" if p.rss_mib is not None else ""
        state = f"running (pid {p.pid}{memory})" if p.running else "stopped"
        lines.append(f"  {p.name:<24} {state:<32} {p.log}")
    if result.state != "running":
        lines.append(f"start it: mims cluster create {flag} --name {result.name}")
    yield from lines
