"""`mims cluster create|status|stop|delete`: the simulated (or kind) cluster mims deploys to when a
blueprint's `cluster.target` is `sim` (or `kind`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

import typer

from mims.cluster import KindCluster, KindStatus, LocalStatus, SimCluster
from mims.commands.options import ClusterName, Quiet, Yes, json_flag
from mims.commands.options import KindCluster as Kind
from mims.console import interactive, output_format, show
from mims.errors import UsageError
from mims.progress import progress_lines

CreateJson = Annotated[bool, json_flag("the cluster's status")]
StatusJson = Annotated[bool, json_flag("the status")]


def register(app: typer.Typer) -> None:
    cluster_app = typer.Typer(
        help="Create, inspect, stop and delete the simulated or kind cluster mims deploys to.", no_args_is_help=True
    )
    cluster_app.command("create")(create)
    cluster_app.command("status")(status)
    cluster_app.command("stop")(stop)
    cluster_app.command("delete")(delete)
    app.add_typer(cluster_app, name="cluster")


def create(
    sim: bool = typer.Option(
        False,
        "--sim",
        help="A simulated cluster: real API server, kwok instead of kubelets, pods never run (the default).",
    ),
    kind: bool = typer.Option(False, "--kind", help="A kind cluster (needs kind and Docker or Podman)."),
    name: ClusterName = "mims",
    cpu: str = typer.Option(None, "--cpu", help="CPUs of a new simulated cluster's node [default: 4]."),
    memory: str = typer.Option(None, "--memory", help="Memory of a new simulated cluster's node [default: 16Gi]."),
    as_json: CreateJson = False,
    quiet: Quiet = False,
) -> None:
    """Create a cluster, or start a stopped one again; a running one is left as it is."""
    if sim and kind:
        raise UsageError("--sim and --kind exclude each other")
    if kind and (cpu or memory):
        raise UsageError("--cpu and --memory size a simulated cluster's node; kind nodes get the machine's")
    fmt = output_format(as_json)
    progress = progress_lines(quiet)
    started = time.monotonic()
    if kind:
        result: LocalStatus | KindStatus = KindCluster(name).create(progress=progress)
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
    result: LocalStatus | KindStatus = KindCluster(name).status() if kind else SimCluster(name).status()
    show(fmt, data=lambda: _as_dict(result), table=lambda: _lines(result))


def stop(
    name: ClusterName = "mims",
    quiet: Quiet = False,
) -> None:
    """Stop a simulated cluster's processes and keep its data; `create` starts it again."""
    progress = progress_lines(quiet)
    if SimCluster(name).stop():
        progress.say(f"stopped simulated cluster `{name}`; `mims cluster create --sim --name {name}` starts it again")
    else:
        progress.say(f"simulated cluster `{name}` was not running")


def delete(
    kind: Kind = False,
    name: ClusterName = "mims",
    yes: Yes = False,
    quiet: Quiet = False,
) -> None:
    """Delete a cluster and everything deployed to it."""
    progress = progress_lines(quiet)
    label = f"{'kind' if kind else 'simulated'} cluster `{name}`"
    target = KindCluster(name) if kind else SimCluster(name)
    if not target.exists():
        progress.say(f"no {label}; nothing to delete")
        return
    if not yes:
        if not interactive():
            raise UsageError(f"deleting {label} needs --yes (no terminal to confirm on)")
        typer.confirm(f"Delete {label} and everything deployed to it?", abort=True)
    target.delete()
    progress.say(f"deleted {label}")


def _as_dict(result: LocalStatus | KindStatus) -> dict:
    return {"type": "kind" if isinstance(result, KindStatus) else "sim"} | result.as_dict()


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
    if result.state == "missing":
        yield f"simulated cluster `{result.name}`: not created (mims cluster create --sim)"
        return
    lines = [f"simulated cluster `{result.name}`: {result.state}"]
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
        lines.append(f"start it: mims cluster create --sim --name {result.name}")
    yield from lines
