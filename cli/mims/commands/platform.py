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
from mims.console import Format, err, need_confirmation_source, new_table, output_format, show
from mims.engine.scheduler import CHANGE_KINDS, StackOutcome
from mims.errors import Drifted, UsageError
from mims.progress import SILENT, progress_lines

if TYPE_CHECKING:
    from mims.engine.datasafety import DataChange
    from mims.engine.deployment import Deployment

Json = Annotated[bool, json_flag("the result")]
Markdown = Annotated[bool, markdown_flag("the summary (a pull-request comment)")]
Refresh = Annotated[
    bool,
    typer.Option(
        "--refresh",
        help="Compare every object with the cluster first and show what was changed or deleted by hand "
        "(slower: every stack runs).",
    ),
]


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
    refresh: Refresh = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    allow_over_budget: AllowOverBudget = False,
    quiet: Quiet = False,
) -> None:
    """Preview every stack: what `mims up` would create, update, replace and delete (and put back:
    objects deleted by hand, or with --refresh also changed by hand)."""
    fmt = output_format(as_json, as_markdown)
    deployment = _open_deployment(
        blueprint,
        kubeconfig=kubeconfig,
        context=context,
        allow_over_budget=allow_over_budget,
        progress=progress_lines(quiet or fmt is not Format.TABLE),
    )
    outcomes = deployment.engine.plan(refresh=refresh)
    data_changes = deployment.data_changes()
    changed = sum(o.changed for o in outcomes)
    show(
        fmt,
        data=lambda: _plan_json(deployment, outcomes) | {"data_changes": [c.as_dict() for c in data_changes]},
        markdown=lambda: _plan_markdown(deployment, outcomes, data_changes),
        table=lambda: [
            _changestable(outcomes, "Plan"),
            *_drifttable(outcomes),
            *_datatable(data_changes),
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
    refresh: Refresh = False,
    allow_data_change: bool = typer.Option(
        False,
        "--allow-data-change",
        help="Deploy even when a database moves to a new major version or a stateful workload gets new volume "
        "claims (refused otherwise, with the steps that keep the data).",
    ),
    no_backup: bool = typer.Option(
        False, "--no-backup", help="Do not back up a database whose image changes before deploying."
    ),
    quiet: Quiet = False,
) -> None:
    """Deploy the platform: every stack in dependency order, independent stacks in parallel. Creates
    the simulated cluster when the blueprint targets one and it is not running. Backs up each
    database whose image changes first, and refuses changes that would lose data (docs/operations.md)."""
    fmt = output_format(as_json)
    need_confirmation_source(yes)
    progress = progress_lines(quiet)
    deployment = _open_deployment(
        blueprint,
        kubeconfig=kubeconfig,
        context=context,
        allow_over_budget=allow_over_budget,
        create_cluster=True,
        progress=progress,
    )
    deployment.protect_data(allow_data_change=allow_data_change, backup_first=not no_backup, say=progress.say)
    if not yes:
        outcomes = deployment.engine.plan(refresh=refresh)
        err.print(_changestable(outcomes, "Plan"))
        for table in _drifttable(outcomes):
            err.print(table)
        if not sum(o.changed for o in outcomes):
            err.print("no changes")
        elif not typer.confirm("Deploy these changes?", default=False, err=True):
            raise typer.Abort()
    outcomes = deployment.engine.up(refresh=refresh)
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
            *_drifttable(outcomes, "Put back"),
            _endpointstable(deployment),
            *(report_tables(report) if report else []),
        ],
    )
    if report:
        fail_on(report)


def status(
    blueprint: Blueprint,
    as_json: Json = False,
    drift: bool = typer.Option(
        False,
        "--drift",
        help="Also compare every object with the cluster (nothing is changed): exit 10 when something was "
        "changed or deleted by hand or the blueprint has changes not deployed.",
    ),
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """Each stack's last update and object count, the public endpoints, and the readiness of every
    workload and volume as the Kubernetes API reports it."""
    fmt = output_format(as_json)
    progress = progress_lines(quiet) if drift else SILENT
    deployment = _open_deployment(blueprint, kubeconfig=kubeconfig, context=context, progress=progress)
    states = deployment.engine.states()
    deployed = any(s.exists for s in states)
    if drift and not deployed:
        raise Drifted(f"{deployment.engine.stack_name} is not deployed on this cluster; run `mims up {blueprint}`")
    workloads = deployment.workloads() if deployed else []
    compared = deployment.engine.plan(refresh=True) if drift else None
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
            **({"drift": _drift_json(compared)} if compared is not None else {}),
        },
        table=lambda: [
            *_status_tables(deployment, states, workloads, f"not deployed; run `mims up {blueprint}`"),
            *(_drift_summary(compared) if compared is not None else []),
        ],
    )
    if compared is not None and (_drifted(compared) or _undeployed(compared)):
        raise Drifted(
            f"the cluster does not match {blueprint}: {_drift_sentence(compared)}; "
            f"`mims up {blueprint} --refresh` puts it back"
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
        False, "--purge-data", help="Also delete the database volumes and the generated secrets (not the backups)."
    ),
    purge_backups: bool = typer.Option(
        False, "--purge-backups", help="With --purge-data, delete the backup volumes too: nothing is left to restore."
    ),
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """Remove the platform, stacks in reverse dependency order. Database volumes (and the
    namespaces holding them), backup volumes and the generated secrets are kept unless
    --purge-data; backup volumes are kept even then, unless --purge-backups."""
    if purge_backups and not purge_data:
        raise UsageError("--purge-backups goes with --purge-data: backups are only deleted with the data")
    need_confirmation_source(yes)
    deployment = _open_deployment(blueprint, kubeconfig=kubeconfig, context=context, progress=progress_lines(quiet))
    if not yes:
        what = (
            "everything, including the database volumes and their backups"
            if purge_backups
            else "everything but the backup volumes"
            if purge_data
            else "everything but the database and backup volumes"
        )
        if not typer.confirm(
            f"Destroy {deployment.engine.stack_name} on {deployment.cluster.kind} cluster "
            f"`{deployment.cluster.name}` ({what})?",
            default=False,
            err=True,
        ):
            raise typer.Abort()
    outcomes, backups_kept = deployment.engine.destroy(purge_data=purge_data, purge_backups=purge_backups)
    kept = []
    if not purge_data:
        kept.append(
            "kept: database and backup volumes, their namespaces and the generated secrets "
            "(`mims destroy --purge-data` removes all but the backups)"
        )
    elif backups_kept:
        kept.append(
            f"kept: the backup volumes in {', '.join(backups_kept)} (`mims restore` reads them after the next "
            "`mims up`; `--purge-data --purge-backups` removes them)"
        )
    show(Format.TABLE, table=lambda: [_changestable(outcomes, "Destroyed"), *kept])


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
        "drift": [{"stack": s, "object": obj, "by_hand": what} for s, obj, what in _drifted(outcomes)],
    }


def _datatable(changes: list[DataChange]) -> list[Table]:
    if not changes:
        return []
    table = new_table("workload", "change", "mims up", title="Data")
    for change in changes:
        table.add_row(
            f"{change.component}/{change.workload}",
            f"{change.kind}: {change.before} -> {change.after}",
            change.what_up_does(),
            style="red" if change.refused else None,
        )
    return [table]


def _plan_markdown(deployment: Deployment, outcomes: list[StackOutcome], data_changes: list[DataChange]) -> str:
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
    if drifted := _drifted(outcomes):
        lines += ["", "Changed by hand (put back by `mims up`):", "", "| stack | object | by hand |", "|---|---|---|"]
        lines += [f"| {stack} | {obj} | {what} |" for stack, obj, what in drifted]
    if data_changes:
        lines += ["", "Data (databases and volumes):", "", "| workload | change | mims up |", "|---|---|---|"]
        lines += [
            f"| {c.component}/{c.workload} | {c.kind}: `{c.before}` -> `{c.after}` | "
            + ("**" + c.what_up_does() + "**" if c.refused else c.what_up_does())
            + " |"
            for c in data_changes
        ]
    return "\n".join(lines) + "\n"


def _drifted(outcomes: list[StackOutcome]) -> list[tuple[str, str, str]]:
    """(stack, object, "changed" or "deleted") of everything a refresh found done by hand."""
    return [(o.name, obj, what) for o in outcomes for obj, what in o.drift.items()]


def _drifttable(outcomes: list[StackOutcome], title: str = "Changed by hand") -> list[Table]:
    drifted = _drifted(outcomes)
    if not drifted:
        return []
    table = new_table("stack", "object", "by hand", title=title)
    for stack, obj, what in drifted:
        table.add_row(stack, obj, what)
    return [table]


def _undeployed(outcomes: list[StackOutcome]) -> list[tuple[str, str, str]]:
    """(stack, object, change) of what the blueprint changes beyond putting back what was done by hand."""
    return [(o.name, obj, op) for o in outcomes for obj, op in o.objects.items() if obj not in o.drift]


def _drift_sentence(outcomes: list[StackOutcome]) -> str:
    drifted, pending = len(_drifted(outcomes)), len(_undeployed(outcomes))
    parts = []
    if drifted:
        parts.append(f"{drifted} object{'s' if drifted != 1 else ''} changed or deleted by hand")
    if pending:
        parts.append(f"{pending} object{'s' if pending != 1 else ''} of the blueprint not deployed")
    return ", ".join(parts) or "no drift"


def _drift_summary(outcomes: list[StackOutcome]) -> list[RenderableType]:
    tables: list[RenderableType] = [*_drifttable(outcomes)]
    if undeployed := _undeployed(outcomes):
        table = new_table("stack", "object", "change", title="Not deployed yet")
        for row in undeployed:
            table.add_row(*row)
        tables.append(table)
    return [*tables, f"drift: {_drift_sentence(outcomes)}"]


def _drift_json(outcomes: list[StackOutcome]) -> dict:
    return {
        "by_hand": [{"stack": s, "object": obj, "what": what} for s, obj, what in _drifted(outcomes)],
        "not_deployed": [{"stack": s, "object": obj, "change": op} for s, obj, op in _undeployed(outcomes)],
        "changes": sum(o.changed for o in outcomes),
    }


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
