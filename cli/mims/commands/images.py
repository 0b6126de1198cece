"""`mims images`: every container image a blueprint deploys, and with `images.mirror` where each one
goes in the private registry, for copying them into an air-gapped city's registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.measure import Measurement
from rich.table import Table

from mims.blueprint import load_blueprint
from mims.charts.images import ImageUse, image_list
from mims.charts.render import Renderer
from mims.commands.options import Blueprint, Quiet, json_flag
from mims.console import Format, new_table, out, output_format, show
from mims.progress import progress_lines

Json = Annotated[bool, json_flag("the list (for mirroring scripts)")]


def register(app: typer.Typer) -> None:
    app.command("images")(images)


def images(
    blueprint: Blueprint,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """List every image the blueprint deploys, once each: each container and init container of every
    rendered object, plus images that software a chart runs starts later (cert-manager's ACME solver).
    With `images.mirror` each source image is shown next to its reference in the mirror
    (docs/air-gapped.md)."""
    fmt = output_format(as_json)
    rendering = Renderer().render(load_blueprint(blueprint))
    listing = image_list(rendering)
    mirror = rendering.mirror.registry if rendering.mirror else None
    show(
        fmt,
        data=lambda: {"mirror": mirror, "images": [entry.as_dict() for entry in listing]},
        table=lambda: [_table(listing, mirror)],
    )
    progress_lines(quiet or fmt is Format.JSON).say(
        f"{len(listing)} images" + (f", mirrored to {mirror}" if mirror else "")
    )


def _table(listing: list[ImageUse], mirror: str | None) -> Table:
    columns = ["image"] + (["mirrored"] if mirror else []) + ["component", "used by"]
    table = new_table(*columns)
    for entry in listing:
        refs = [entry.image] + ([entry.mirrored or ""] if mirror else [])
        for component in entry.components:
            uses = [str(u) for u in entry.uses if u.component == component]
            table.add_row(*refs, component, "\n".join(uses))
            refs = [""] * len(refs)
    for column in table.columns[:-1]:
        column.no_wrap = True
        column.min_width = max((len(line) for cell in column.cells for line in str(cell).splitlines()), default=0)
    # References are copied from here, so they are never cut: the table grows past a narrow terminal,
    # and printed to a file or pipe it wraps nothing (one line per use, for grep).
    table.columns[-1].overflow = "fold"
    measured = Measurement.get(out, out.options.update(max_width=10_000), table)
    wanted = measured.minimum if out.is_terminal else measured.maximum
    if wanted > out.width:
        table.width = wanted
    return table
