"""`mims render`: the Kubernetes objects a blueprint becomes, for review and GitOps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mims.blueprint import load_blueprint
from mims.charts.output import footprint_rows, summary, write_rendering
from mims.charts.render import Renderer, Rendering
from mims.commands.options import Blueprint, Quiet, json_flag
from mims.console import Format, output_format, show
from mims.progress import progress_lines

Json = Annotated[bool, json_flag("a summary")]


def register(app: typer.Typer) -> None:
    app.command("render")(render)


def render(
    blueprint: Blueprint,
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (one sub-folder per stack)."),
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Render every stack's objects to files: one folder per stack, one file per object. No secret
    value is ever rendered; Secrets carry only what the engine generates at deploy time."""
    fmt = output_format(as_json)
    rendering = Renderer().render(load_blueprint(blueprint))
    count = write_rendering(rendering, output)
    show(fmt, data=lambda: summary(rendering) | {"output": str(output)}, table=lambda: [_footprint(rendering)])
    progress_lines(quiet or fmt is Format.JSON).say(
        f"wrote {count} objects in {len(rendering.layers)} layers to {output}"
    )


def _footprint(rendering: Rendering) -> Table:
    table = Table("component", "cpu req", "mem req GiB", "cpu lim", "mem lim GiB", "storage GiB", "pods")
    for name, fp in footprint_rows(rendering):
        row = fp.as_dict()
        table.add_row(
            name,
            f"{row['requests']['cpu']:g}",
            f"{row['requests']['memory_gib']:g}",
            f"{row['limits']['cpu']:g}",
            f"{row['limits']['memory_gib']:g}",
            f"{row['storage_gib']:g}",
            str(row["pods"]),
        )
    return table
