"""`mims images`: every container image a blueprint deploys, and with `images.mirror` where each one
goes in the private registry, for copying them into an air-gapped city's registry."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.measure import Measurement

from mims.blueprint import load_blueprint
from mims.charts.images import image_list
from mims.charts.render import Renderer
from mims.console import err, new_table, out, print_json


def register(app: typer.Typer) -> None:
    app.command("images")(images)


def images(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file.", envvar="MIMS_BLUEPRINT"),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON to stdout (for mirroring scripts)."),
) -> None:
    """List every image the blueprint deploys, once each: each container and init container of every
    rendered object, plus images that software a chart runs starts later (cert-manager's ACME solver).
    With `images.mirror` each source image is shown next to its reference in the mirror
    (docs/air-gapped.md)."""
    rendering = Renderer().render(load_blueprint(blueprint))
    listing = image_list(rendering)
    mirror = rendering.mirror.registry if rendering.mirror else None
    if as_json:
        print_json({"mirror": mirror, "images": [entry.as_dict() for entry in listing]})
        return
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
    out.print(table)
    err.print(f"{len(listing)} images" + (f", mirrored to {mirror}" if mirror else ""))
