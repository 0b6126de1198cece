"""The platform on a cluster: `mims plan`, `mims up`, `mims status` and `mims destroy`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import RenderableType
from rich.table import Table

from mims.commands.options import AllowOverBudget, Blueprint, Context, Kubeconfig, Quiet, Yes, json_flag, markdown_flag
from mims.commands.verify import fail_on, report_tables, run_verification
from mims.console import Format, err, interactive, new_table, output_format, show
from mims.engine.scheduler import CHANGE_KINDS, StackOutcome
from mims.errors import UsageError
from mims.progress import SILENT, progress_lines

if TYPE_CHECKING:
    from mims.engine.deployment import Deployment

Json = Annotated[bool, json_flag("the result")]
Markdown = Annotated[bool, markdown_flag("the summary (a pull-request comment)")]


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("up")(up)
    app.command("status")(status)
    app.command("destroy")(destroy)


def plan(
    blueprint: Blueprint,
    as_json: Json = False,
    as_markdown: Markdown = False,
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 0 when nothing would change, 2 when something would."
    ),
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    allow_over_budget: AllowOverBudget = False,
    quiet: Quiet = False,
) -> None:
    """Preview every stack: what `mims up` would create, update, replace and delete."""
    fmt = output_format(as_json, as_markdown)
    deployment = _open_deployment(
        blueprint,
        kubeconfig=kubeconfig,
        context=context,
        allow_over_budget=allow_over_budget,
        progress=progress_lines(quiet or fmt is not Format.TABLE),
    )
    outcomes = deployment.engine.plan()
    changed = sum(o.changed for o in outcomes)
    show(
        fmt,
        data=lambda: _plan_json(deployment, outcomes),
        markdown=lambda: _plan_markdown(deployment, outcomes),
        table=lambda: [
            _changestable(outcomes, "Plan"),
            f"{changed} change{'s' if changed != 1 else ''}" if changed else "no changes",
        ],
    )
    if detailed_exitcode and changed:
        raise typer.Exit(2)


def up(
    blueprint: Blueprint,
    yes: Yes = False,
    as_json: Json = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    allow_over_budget: AllowOverBudget = False,
    verify: bool = typer.Option(
        False, "--verify", help="Then run `mims verify`: exit 8 when a probe fails (the deployment stays)."
    ),
    quiet: Quiet = False,
) -> None:
    """Deploy the platform: every stack in dependency order, independent stacks in parallel. Creates
    the simulated cluster when the blueprint targets one and it is not running."""
    fmt = output_format(as_json)
    _need_confirmation_source(yes)
    progress = progress_lines(quiet)
    deployment = _open_deployment(
        blueprint,
        kubeconfig=kubeconfig,
        context=context,
        allow_over_budget=allow_over_budget,
        create_cluster=True,
        progress=progress,
    )
    if not yes:
        outcomes = deployment.engine.plan()
        err.print(_changestable(outcomes, "Plan"))
        if not sum(o.changed for o in outcomes):
            err.print("no changes")
        elif not typer.confirm("Deploy these changes?", default=False, err=True):
            raise typer.Abort()
    outcomes = deployment.engine.up()
    report = run_verification(deployment, progress) if verify else None
    show(
        fmt,
        data=lambda: (
            _plan_json(deployment, outcomes)
            | {"endpoints": _endpoints(deployment)}
            | ({"verify": report.as_dict()} if report else {})
        ),
        table=lambda: [
            _changestable(outcomes, "Changes"),
            _endpointstable(deployment),
            *(report_tables(report) if report else []),
        ],
    )
    if report:
        fail_on(report)


def status(
    blueprint: Blueprint,
    as_json: Json = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Each stack's last update and object count, the public endpoints, and the readiness of every
    workload and volume as the Kubernetes API reports it."""
    fmt = output_format(as_json)
    deployment = _open_deployment(blueprint, kubeconfig=kubeconfig, context=context, progress=SILENT)
    states = deployment.engine.states()
    deployed = any(s.exists for s in states)
    workloads = deployment.workloads() if deployed else []
    show(
        fmt,
        data=lambda: {
            "blueprint": str(blueprint),
            "stack": deployment.engine.stack_name,
            "cluster": {"kind": deployment.cluster.kind, "name": deployment.cluster.name},
            "stacks": [vars(s) for s in states],
            "workloads": [vars(w) for w in workloads],
            "ready": deployed and all(w.ok for w in workloads),
            "endpoints": _endpoints(deployment),
        },
        table=lambda: _status_tables(deployment, states, workloads, f"not deployed; run `mims up {blueprint}`"),
    )


def _open_deployment(blueprint: Path, **options: Any) -> Deployment:
    """Pulumi and the Kubernetes client are loaded by the commands that deploy, not by every `mims`."""
    from mims.engine.deployment import open_deployment

    return open_deployment(blueprint, **options)


def _status_tables(deployment: Deployment, states: list, workloads: list, hint: str) -> Iterator[RenderableType]:
    table = new_table("stack", "last update", "result", "objects", title=f"Stacks of {deployment.engine.stack_name}")
    for s in states:
        table.add_row(s.name, s.last_update or "never", s.result or "-", str(s.resources))
    yield table
    if not any(s.exists for s in states):
        yield hint
        return
    table = new_table("namespace", "kind", "name", "ready", title="Workloads and volumes")
    for w in workloads:
        table.add_row(w.namespace, w.kind, w.name, w.ready, style=None if w.ok else "red")
    yield table
    yield _endpointstable(deployment)
    waiting = [w for w in workloads if not w.ok]
    yield f"{len(workloads) - len(waiting)} of {len(workloads)} ready"


def destroy(
    blueprint: Blueprint,
    yes: Yes = False,
    purge_data: bool = typer.Option(
        False, "--purge-data", help="Also delete the database volumes and the generated secrets."
    ),
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """Remove the platform, stacks in reverse dependency order. Database volumes (and the
    namespaces holding them) and the generated secrets are kept unless --purge-data."""
    _need_confirmation_source(yes)
    deployment = _open_deployment(blueprint, kubeconfig=kubeconfig, context=context, progress=progress_lines(quiet))
    if not yes:
        what = "everything, including the database volumes" if purge_data else "everything but the database volumes"
        if not typer.confirm(
            f"Destroy {deployment.engine.stack_name} on {deployment.cluster.kind} cluster "
            f"`{deployment.cluster.name}` ({what})?",
            default=False,
            err=True,
        ):
            raise typer.Abort()
    outcomes = deployment.engine.destroy(purge_data=purge_data)
    kept = (
        []
        if purge_data
        else [
            "kept: database volumes, their namespaces and the generated secrets "
            "(`mims destroy --purge-data` removes them)"
        ]
    )
    show(Format.TABLE, table=lambda: [_changestable(outcomes, "Destroyed"), *kept])


def _need_confirmation_source(yes: bool) -> None:
    if not yes and not interactive():
        raise UsageError("no terminal to confirm on; pass --yes")


def _endpoints(deployment: Deployment) -> list[dict]:
    return [{"component": e.component, "name": e.name, "url": url} for e, url in deployment.rendering.public_urls()]


def _plan_json(deployment: Deployment, outcomes: list[StackOutcome]) -> dict:
    return {
        "blueprint": str(deployment.rendering.loaded.path),
        "stack": deployment.engine.stack_name,
        "cluster": {"kind": deployment.cluster.kind, "name": deployment.cluster.name},
        "stacks": [
            {
                "name": o.name,
                **{k: o.changes.get(k, 0) for k in (*CHANGE_KINDS, "same")},
                "seconds": round(o.seconds, 2),
            }
            for o in outcomes
        ],
        "changes": sum(o.changed for o in outcomes),
    }


def _plan_markdown(deployment: Deployment, outcomes: list[StackOutcome]) -> str:
    changed = sum(o.changed for o in outcomes)
    lines = [
        f"### mims plan: `{deployment.engine.stack_name}`",
        "",
        f"{changed} change{'s' if changed != 1 else ''}" if changed else "No changes.",
        "",
        "| stack | create | update | replace | delete | unchanged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {o.name} | " + " | ".join(str(o.changes.get(k, 0)) for k in (*CHANGE_KINDS, "same")) + " |"
        for o in outcomes
    ]
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
    elif deployment.cluster.kind == "node":
        title += " (real node: answered on this machine once DNS points the city's hosts at it)"
    table = new_table("component", "endpoint", "url", title=title)
    for endpoint, url in deployment.rendering.public_urls():
        table.add_row(endpoint.component, endpoint.name, url)
    return table
