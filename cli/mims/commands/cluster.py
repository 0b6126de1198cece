"""`mims cluster create|status|stop|delete`: the simulated (or kind) cluster mims deploys to when a
blueprint's `cluster.target` is `sim` (or `kind`)."""

from __future__ import annotations

import time

import typer

from mims.cluster import KindCluster, KindStatus, SimCluster, SimStatus
from mims.console import err, interactive, out, print_json
from mims.errors import UsageError

NAME_HELP = "Cluster name; blueprints use the cluster named mims."


def register(app: typer.Typer) -> None:
    cluster_app = typer.Typer(help="Create, inspect, stop and delete the simulated or kind cluster mims "
                                   "deploys to.", no_args_is_help=True)
    cluster_app.command("create")(create)
    cluster_app.command("status")(status)
    cluster_app.command("stop")(stop)
    cluster_app.command("delete")(delete)
    app.add_typer(cluster_app, name="cluster")


def create(
    sim: bool = typer.Option(False, "--sim", help="A simulated cluster: real API server, kwok instead of "
                                                 "kubelets, pods never run (the default)."),
    kind: bool = typer.Option(False, "--kind", help="A kind cluster (needs kind and Docker or Podman)."),
    name: str = typer.Option("mims", "--name", help=NAME_HELP),
    cpu: str = typer.Option(None, "--cpu", help="CPUs of a new simulated cluster's node [default: 4]."),
    memory: str = typer.Option(None, "--memory", help="Memory of a new simulated cluster's node [default: 16Gi]."),
    as_json: bool = typer.Option(False, "--json", help="Print the cluster's status as JSON to stdout."),
) -> None:
    """Create a cluster, or start a stopped one again; a running one is left as it is."""
    if sim and kind:
        raise UsageError("--sim and --kind exclude each other")
    if kind and (cpu or memory):
        raise UsageError("--cpu and --memory size a simulated cluster's node; kind nodes get the machine's")
    started = time.monotonic()
    if kind:
        result: SimStatus | KindStatus = KindCluster(name).create(progress=_say)
    else:
        result = SimCluster(name).create(cpu=cpu, memory=memory, progress=_say)
    seconds = round(time.monotonic() - started, 1)
    if as_json:
        print_json(_as_dict(result) | {"seconds": seconds})
        return
    _show(result)
    out.print(f"use it:      export KUBECONFIG={result.kubeconfig}   (then: kubectl get nodes)", markup=False)


def status(
    kind: bool = typer.Option(False, "--kind", help="A kind cluster instead of a simulated one."),
    name: str = typer.Option("mims", "--name", help=NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON to stdout."),
) -> None:
    """Show whether the cluster runs, where its API and kubeconfig are, and what it uses."""
    result: SimStatus | KindStatus = KindCluster(name).status() if kind else SimCluster(name).status()
    if as_json:
        print_json(_as_dict(result))
        return
    _show(result)


def stop(
    name: str = typer.Option("mims", "--name", help=NAME_HELP),
) -> None:
    """Stop a simulated cluster's processes and keep its data; `create` starts it again."""
    if SimCluster(name).stop():
        err.print(f"stopped simulated cluster `{name}`; `mims cluster create --sim --name {name}` starts it again",
                  markup=False)
    else:
        err.print(f"simulated cluster `{name}` was not running", markup=False)


def delete(
    kind: bool = typer.Option(False, "--kind", help="A kind cluster instead of a simulated one."),
    name: str = typer.Option("mims", "--name", help=NAME_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (required when not at a terminal)."),
) -> None:
    """Delete a cluster and everything deployed to it."""
    label = f"{'kind' if kind else 'simulated'} cluster `{name}`"
    target = KindCluster(name) if kind else SimCluster(name)
    if not target.exists():
        err.print(f"no {label}; nothing to delete", markup=False)
        return
    if not yes:
        if not interactive():
            raise UsageError(f"deleting {label} needs --yes (no terminal to confirm on)")
        typer.confirm(f"Delete {label} and everything deployed to it?", abort=True)
    target.delete()
    err.print(f"deleted {label}", markup=False)


def _say(text: str) -> None:
    err.print(text, markup=False, highlight=False)


def _as_dict(result: SimStatus | KindStatus) -> dict:
    return {"type": "kind" if isinstance(result, KindStatus) else "sim"} | result.as_dict()


def _show(result: SimStatus | KindStatus) -> None:
    if isinstance(result, KindStatus):
        if not result.exists:
            out.print(f"kind cluster `{result.name}`: not created (mims cluster create --kind)", markup=False)
            return
        out.print(f"kind cluster `{result.name}`: {result.nodes} node{'s' if result.nodes != 1 else ''}, "
                  f"context {result.context}", markup=False)
        out.print(f"kubeconfig:  {result.kubeconfig}", markup=False)
        return
    if result.state == "missing":
        out.print(f"simulated cluster `{result.name}`: not created (mims cluster create --sim)", markup=False)
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
    out.print("\n".join(lines), markup=False)
