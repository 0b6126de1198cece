"""`mims render`: the Kubernetes objects a blueprint becomes, for review and GitOps."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mims.blueprint import load_blueprint
from mims.charts.output import footprint_rows, summary, write_rendering
from mims.charts.render import Renderer
from mims.console import err, out, print_json


def register(app: typer.Typer) -> None:
    app.command("render")(render)


def render(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file.", envvar="MIMS_BLUEPRINT"),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (one sub-folder per stack)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary to stdout."),
) -> None:
    """Render every stack's objects to files: one folder per stack, one file per object. No secret
    value is ever rendered; Secrets carry only what the engine generates at deploy time."""
    rendering = Renderer().render(load_blueprint(blueprint))
    count = write_rendering(rendering, output)
    if as_json:
        print_json(summary(rendering) | {"output": str(output)})
        return
    table = Table("component", "cpu req", "mem req GiB", "cpu lim", "mem lim GiB", "storage GiB", "pods")
    for name, fp in footprint_rows(rendering):
        row = fp.as_dict()
        table.add_row(name, f"{row['requests']['cpu']:g}", f"{row['requests']['memory_gib']:g}",
                      f"{row['limits']['cpu']:g}", f"{row['limits']['memory_gib']:g}",
                      f"{row['storage_gib']:g}", str(row["pods"]))
    out.print(table)
    err.print(f"wrote {count} objects in {len(rendering.stacks)} stacks to {output}")
