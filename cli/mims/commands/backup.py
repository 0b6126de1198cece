"""`mims backup now|list` and `mims restore`: the databases' backups, run in the cluster (the Jobs
are made in `mims.backup`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mims.commands.options import Blueprint, Context, Kubeconfig, Quiet, Yes, json_flag
from mims.console import Format, err, need_confirmation_source, new_table, output_format, show
from mims.errors import BackupFailed
from mims.progress import progress_lines

if TYPE_CHECKING:
    from kubernetes import client

    from mims.backup import Backup, Database
    from mims.progress import Progress

backup_app = typer.Typer(help="Backups of the platform's databases (docs/operations.md).", no_args_is_help=True)
Components = Annotated[
    list[str] | None,
    typer.Argument(
        help="Only the databases of these components (e.g. iam catalogue); all by default.", show_default=False
    ),
]
Json = Annotated[bool, json_flag("the backups")]


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
    app.command("restore")(restore)


@backup_app.command("now")
def now(
    blueprint: Blueprint,
    components: Components = None,
    as_json: Json = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """Dump every database now (or those of COMPONENTS), all under one backup id; the blueprint's
    `backup.keep` newest backups stay."""
    from mims import backup

    fmt = output_format(as_json)
    progress = progress_lines(quiet or fmt is not Format.TABLE)
    api, found = _connect(blueprint, kubeconfig, context, components, progress)
    backup_id = backup.new_backup_id()
    progress.say(f"backup {backup_id} of {len(found)} database(s)")
    made = backup.back_up(api, found, backup_id, progress.say)
    show(fmt, data=lambda: {"id": backup_id, "backups": [b.as_dict() for b in made]}, table=lambda: [_table(made)])


@backup_app.command("list")
def list_(
    blueprint: Blueprint,
    components: Components = None,
    as_json: Json = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """The backups on each database's backup volume, oldest first."""
    from mims import backup

    fmt = output_format(as_json)
    progress = progress_lines(quiet or fmt is not Format.TABLE)
    api, found = _connect(blueprint, kubeconfig, context, components, progress)
    backups = backup.list_backups(api, found, progress.say)
    show(fmt, data=lambda: {"backups": [b.as_dict() for b in backups]}, table=lambda: [_table(backups)])


def restore(
    blueprint: Blueprint,
    backup_id: Annotated[str, typer.Option("--from", help="The backup's id (`mims backup list`).")],
    components: Components = None,
    yes: Yes = False,
    as_json: Annotated[bool, json_flag("the restored databases")] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """Replace the contents of every database (or those of COMPONENTS) with backup --from, then
    restart the applications that use them. Asks first unless --yes. Each database is restored in
    one transaction: a damaged dump, or one from a newer PostgreSQL major version, changes nothing."""
    from mims import backup

    need_confirmation_source(yes)
    fmt = output_format(as_json)
    progress = progress_lines(quiet or fmt is not Format.TABLE)
    api, found = _connect(blueprint, kubeconfig, context, components, progress)
    names = ", ".join(d.name for d in found)
    if not yes and not typer.confirm(
        f"Replace the data of {names} with backup {backup_id}? What was written since is lost.", default=False, err=True
    ):
        raise typer.Abort()
    restored = backup.restore(api, found, backup_id, progress.say)
    show(
        fmt,
        data=lambda: {
            "id": backup_id,
            "restored": [{"component": d.component, "database": d.workload} for d in restored],
        },
        table=lambda: [_restored_table(backup_id, restored)],
    )


def _connect(
    blueprint, kubeconfig, context, components: list[str] | None, progress: Progress
) -> tuple[client.ApiClient, list[Database]]:
    from mims.backup import databases
    from mims.engine.deployment import place
    from mims.engine.progress import Reporter

    placement = place(blueprint, kubeconfig=kubeconfig, context=context, reporter=Reporter(progress))
    if placement.cluster.kind == "sim":
        raise BackupFailed(
            "the blueprint's cluster is simulated: no container runs there, so no database can be dumped; "
            "back up a real node (`cluster.target: node`) or cluster (`--context`)"
        )
    api = placement.cluster.api_client()
    return api, databases(api, placement.rendering.loaded.blueprint.city.name, components)


def _table(backups: list[Backup]):
    """Narrow enough for 80 columns, so the id (what `mims restore --from` takes) is never cut; the
    checksum and times are in `--json`."""
    table = new_table("id", "database", "engine", "size")
    table.columns[0].no_wrap = True
    for b in backups:
        table.add_row(
            b.id, f"{b.component}/{b.workload}", f"{b.engine} {b.server_version_num // 10000}", _size(b.bytes)
        )
    if not backups:
        err.print("no backups yet: `mims backup now` makes one")
    return table


def _restored_table(backup_id: str, restored: list[Database]):
    table = new_table("component", "database", "restarted", title=f"Restored from {backup_id}")
    for d in restored:
        table.add_row(d.component, f"{d.workload}/{d.database}", d.application)
    return table


def _size(count: int) -> str:
    value, unit = float(count), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
