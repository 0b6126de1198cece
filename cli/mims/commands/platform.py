"""The platform on a cluster: `mims plan`, `mims up`, `mims status` and `mims destroy`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from mims.console import err, interactive, out, print_json, new_table
from mims.engine.deployment import Deployment, open_deployment
from mims.engine.scheduler import CHANGE_KINDS, StackOutcome
from mims.errors import UsageError

BLUEPRINT = typer.Argument(..., help="Blueprint YAML file.", envvar="MIMS_BLUEPRINT")
KUBECONFIG = typer.Option(None, "--kubeconfig", envvar="MIMS_KUBECONFIG",
                          help="Deploy to this kubeconfig instead of the blueprint's cluster.")
CONTEXT = typer.Option(None, "--context", envvar="MIMS_CONTEXT",
                       help="Deploy to this kubeconfig context instead of the blueprint's cluster.")
ALLOW_OVER_BUDGET = typer.Option(False, "--allow-over-budget",
                                 help="Go on although the cost estimate is over budget.cap_eur.")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed when stdin is not a terminal).")
JSON = typer.Option(False, "--json", help="Print the result as JSON to stdout.")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("up")(up)
    app.command("status")(status)
    app.command("destroy")(destroy)


def plan(
    blueprint: Path = BLUEPRINT,
    as_json: bool = JSON,
    as_markdown: bool = typer.Option(False, "--markdown", help="Print the summary as Markdown (a pull-request comment)."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                           help="Exit 0 when nothing would change, 2 when something would."),
    kubeconfig: Path = KUBECONFIG,
    context: str = CONTEXT,
    allow_over_budget: bool = ALLOW_OVER_BUDGET,
) -> None:
    """Preview every stack: what `mims up` would create, update, replace and delete."""
    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")
    deployment = open_deployment(blueprint, kubeconfig=kubeconfig, context=context,
                                 allow_over_budget=allow_over_budget, quiet=as_json or as_markdown)
    outcomes = deployment.engine.plan()
    if as_json:
        print_json(_plan_json(deployment, outcomes))
    elif as_markdown:
        sys.stdout.write(_plan_markdown(deployment, outcomes))
    else:
        out.print(_changestable(outcomes, "Plan"))
    changed = sum(o.changed for o in outcomes)
    if not as_json and not as_markdown:
        out.print(f"{changed} change{'s' if changed != 1 else ''}" if changed else "no changes")
    if detailed_exitcode and changed:
        raise typer.Exit(2)


def up(
    blueprint: Path = BLUEPRINT,
    yes: bool = YES,
    as_json: bool = JSON,
    kubeconfig: Path = KUBECONFIG,
    context: str = CONTEXT,
    allow_over_budget: bool = ALLOW_OVER_BUDGET,
) -> None:
    """Deploy the platform: every stack in dependency order, independent stacks in parallel. Creates
    the simulated cluster when the blueprint targets one and it is not running."""
    _need_confirmation_source(yes)
    deployment = open_deployment(blueprint, kubeconfig=kubeconfig, context=context,
                                 allow_over_budget=allow_over_budget, create_cluster=True)
    if not yes:
        outcomes = deployment.engine.plan()
        err.print(_changestable(outcomes, "Plan"))
        if not sum(o.changed for o in outcomes):
            err.print("no changes")
        elif not typer.confirm("Deploy these changes?", default=False, err=True):
            raise typer.Abort()
    outcomes = deployment.engine.up()
    urls = deployment.rendering.public_urls()
    if as_json:
        print_json(_plan_json(deployment, outcomes) | {
            "endpoints": [{"component": e.component, "name": e.name, "url": url} for e, url in urls]})
        return
    out.print(_changestable(outcomes, "Changes"))
    out.print(_endpointstable(deployment))


def status(
    blueprint: Path = BLUEPRINT,
    as_json: bool = JSON,
    kubeconfig: Path = KUBECONFIG,
    context: str = CONTEXT,
) -> None:
    """Each stack's last update and object count, the public endpoints, and the readiness of every
    workload and volume as the Kubernetes API reports it."""
    deployment = open_deployment(blueprint, kubeconfig=kubeconfig, context=context, quiet=True)
    states = deployment.engine.states()
    deployed = any(s.exists for s in states)
    workloads = deployment.workloads() if deployed else []
    if as_json:
        print_json({
            "blueprint": str(blueprint), "stack": deployment.engine.stack_name,
            "cluster": {"kind": deployment.cluster.kind, "name": deployment.cluster.name},
            "stacks": [vars(s) for s in states],
            "workloads": [vars(w) for w in workloads],
            "ready": deployed and all(w.ok for w in workloads),
            "endpoints": [{"component": e.component, "name": e.name, "url": url}
                          for e, url in deployment.rendering.public_urls()]})
        return
    table = new_table("stack", "last update", "result", "objects", title=f"Stacks of {deployment.engine.stack_name}")
    for s in states:
        table.add_row(s.name, s.last_update or "never", s.result or "-", str(s.resources))
    out.print(table)
    if not deployed:
        out.print(f"not deployed; run `mims up {blueprint}`")
        return
    table = new_table("namespace", "kind", "name", "ready", title="Workloads and volumes")
    for w in workloads:
        table.add_row(w.namespace, w.kind, w.name, w.ready, style=None if w.ok else "red")
    out.print(table)
    out.print(_endpointstable(deployment))
    waiting = [w for w in workloads if not w.ok]
    out.print(f"{len(workloads) - len(waiting)} of {len(workloads)} ready")


def destroy(
    blueprint: Path = BLUEPRINT,
    yes: bool = YES,
    purge_data: bool = typer.Option(False, "--purge-data",
                                    help="Also delete the database volumes and the generated secrets."),
    kubeconfig: Path = KUBECONFIG,
    context: str = CONTEXT,
) -> None:
    """Remove the platform, stacks in reverse dependency order. Database volumes (and the
    namespaces holding them) and the generated secrets are kept unless --purge-data."""
    _need_confirmation_source(yes)
    deployment = open_deployment(blueprint, kubeconfig=kubeconfig, context=context)
    if not yes:
        what = "everything, including the database volumes" if purge_data else "everything but the database volumes"
        if not typer.confirm(f"Destroy {deployment.engine.stack_name} on {deployment.cluster.kind} cluster "
                             f"`{deployment.cluster.name}` ({what})?", default=False, err=True):
            raise typer.Abort()
    outcomes = deployment.engine.destroy(purge_data=purge_data)
    out.print(_changestable(outcomes, "Destroyed"))
    if not purge_data:
        out.print("kept: database volumes, their namespaces and the generated secrets "
                  "(`mims destroy --purge-data` removes them)")


def _need_confirmation_source(yes: bool) -> None:
    if not yes and not interactive():
        raise UsageError("no terminal to confirm on; pass --yes")


def _plan_json(deployment: Deployment, outcomes: list[StackOutcome]) -> dict:
    return {
        "blueprint": str(deployment.rendering.loaded.path), "stack": deployment.engine.stack_name,
        "cluster": {"kind": deployment.cluster.kind, "name": deployment.cluster.name},
        "stacks": [{"name": o.name, **{k: o.changes.get(k, 0) for k in (*CHANGE_KINDS, "same")},
                    "seconds": round(o.seconds, 2)} for o in outcomes],
        "changes": sum(o.changed for o in outcomes),
    }


def _plan_markdown(deployment: Deployment, outcomes: list[StackOutcome]) -> str:
    changed = sum(o.changed for o in outcomes)
    lines = [f"### mims plan: `{deployment.engine.stack_name}`", "",
             f"{changed} change{'s' if changed != 1 else ''}" if changed else "No changes.", "",
             "| stack | create | update | replace | delete | unchanged |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {o.name} | " + " | ".join(str(o.changes.get(k, 0)) for k in (*CHANGE_KINDS, "same")) + " |"
              for o in outcomes]
    return "\n".join(lines) + "\n"


def _changestable(outcomes: list[StackOutcome], title: str) -> Table:
    table = new_table("stack", "create", "update", "replace", "delete", "unchanged", "seconds", title=title)
    for column in table.columns[1:]:
        column.justify = "right"
    for o in outcomes:
        table.add_row(o.name, *(str(o.changes.get(k, 0)) for k in (*CHANGE_KINDS, "same")), f"{o.seconds:.1f}")
    return table


def _endpointstable(deployment: Deployment) -> Table:
    title = "Endpoints"
    if deployment.cluster.kind == "sim":
        title += " (simulated cluster: the objects exist, no container runs, nothing answers)"
    table = new_table("component", "endpoint", "url", title=title)
    for endpoint, url in deployment.rendering.public_urls():
        table.add_row(endpoint.component, endpoint.name, url)
    return table
