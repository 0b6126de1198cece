"""`mims cost`: what a blueprint's platform costs in the first year and over its horizon, on one
hosting option or side by side on several."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.text import Text

from mims.blueprint import load_blueprint
from mims.charts.render import Renderer
from mims.commands.options import Blueprint, Quiet, json_flag, markdown_flag
from mims.console import err, new_table, output_format, show
from mims.cost.chart import FORMATS, compare_chart, single_chart, write_chart
from mims.cost.model import Estimate, estimate
from mims.cost.report import GIB, as_dict, compare_markdown, eur, headline, markdown, nodes_text
from mims.cost.sheets import Sheet, sheets_for
from mims.errors import UsageError
from mims.progress import progress_lines

KIND_ORDER = {"eu-provider": 0, "hyperscaler": 1, "on-premises": 2}
Json = Annotated[bool, json_flag("the estimate (a list with --compare)")]
Markdown = Annotated[bool, markdown_flag("the estimate")]


def register(app: typer.Typer) -> None:
    app.command("cost")(cost)


def cost(
    blueprint: Blueprint,
    as_json: Json = False,
    as_markdown: Markdown = False,
    compare: str = typer.Option(
        None,
        "--compare",
        metavar="OPTIONS",
        help="Hosting options side by side, comma-separated (hetzner,ovh,scaleway,ionos,aws,on-premises), or `all`.",
    ),
    chart: Path = typer.Option(
        None, "--chart", metavar="FILE", help="Also write a bar chart: FILE.svg, or FILE.png (needs mims[cost-chart])."
    ),
    quiet: Quiet = False,
) -> None:
    """Estimate the platform's cost: nodes, control plane, load balancers, storage, backups, egress,
    staff and extras, from the rendered objects and a dated price sheet (docs/cost.md)."""
    fmt = output_format(as_json, as_markdown)
    if chart is not None and chart.suffix.lower() not in FORMATS:
        raise UsageError(f"--chart {chart}: the file name must end in .svg or .png")
    loaded = load_blueprint(blueprint)
    rendering = Renderer().render(loaded)
    sheets = sheets_for(loaded.blueprint.budget.price_sheets_dir, loaded.base_dir)
    display_name = loaded.blueprint.city.display_name

    if compare is None:
        result = estimate(rendering, sheets=sheets)
        results = [result]
        view = _View(
            data=lambda: as_dict(result),
            table=lambda: _estimate_tables(result),
            markdown=lambda: markdown(result),
            chart=lambda: single_chart(result, display_name),
        )
    else:
        results = [estimate(rendering, hosting=name, sheets=sheets) for name in _options(compare, sheets)]
        view = _View(
            data=lambda: [as_dict(r) for r in results],
            table=lambda: _comparison_tables(results),
            markdown=lambda: compare_markdown(results),
            chart=lambda: compare_chart(results, display_name),
        )
    for warning in dict.fromkeys(w for r in results for w in r.warnings):
        err.print(f"warning: {warning}", markup=False)
    show(fmt, data=view.data, table=view.table, markdown=view.markdown)
    if chart is not None:
        write_chart(view.chart(), chart)
        progress_lines(quiet).say(f"wrote {chart}")


@dataclass(frozen=True)
class _View:
    """One estimate, or several side by side, in each of the forms `mims cost` prints or writes."""

    data: Callable[[], Any]
    table: Callable[[], Iterable[RenderableType]]
    markdown: Callable[[], str]
    chart: Callable[[], Any]


def _options(compare: str, sheets: dict[str, Sheet]) -> list[str]:
    names = [n.strip() for n in compare.split(",") if n.strip()]
    if names == ["all"]:
        return sorted(sheets, key=lambda n: (KIND_ORDER.get(sheets[n].kind, 9), n))
    unknown = [n for n in names if n not in sheets]
    if unknown or not names:
        raise UsageError(
            f"--compare: no price sheet `{unknown[0] if unknown else compare}`; choose from "
            f"{', '.join(sorted(sheets))}, or `all`"
        )
    return list(dict.fromkeys(names))


def _estimate_tables(e: Estimate) -> Iterator[RenderableType]:
    years = e.horizon_years
    yield (
        f"{e.city} on {e.sheet.name} (price sheet `{e.sheet.id}`, oldest price "
        f"{e.sheet.date.isoformat()}); amounts in EUR"
    )
    yield f"nodes: {nodes_text(e)}"
    table = new_table("category", "item", "first year", f"{years} years", title="By category")
    for column in table.columns[2:]:
        column.justify, column.no_wrap = "right", True
    for line in e.lines:
        table.add_row(line.category, line.item, eur(line.first_year), eur(line.over(years)))
    table.add_section()
    table.add_row(
        "infrastructure",
        "",
        eur(e.infrastructure_per_year),
        eur(sum(line.over(years) for line in e.lines if line.infrastructure)),
    )
    table.add_row("total", "", eur(e.first_year_total), eur(e.horizon_total), style="bold")
    yield table
    table = new_table(
        "component",
        "pods",
        "CPU req",
        "mem GiB",
        "disk GiB",
        "share",
        "infra/yr",
        title="By component (share of the requests; infrastructure: its own volumes and load "
        "balancers plus its share of the rest)",
    )
    for column in table.columns:
        column.no_wrap = True
    for column in table.columns[1:]:
        column.justify = "right"
    for c in e.components:
        table.add_row(
            c.name,
            str(c.pods),
            f"{c.cpu_request_m / 1000:g}",
            f"{c.memory_request / GIB:.2f}",
            f"{c.storage / GIB:g}",
            f"{c.share:.1%}",
            eur(c.infrastructure_per_year),
        )
    yield table
    table = new_table("component", "software", "licence", title="Software licences (no licence fees)")
    for c in e.components:
        for software, licence in c.licences:
            table.add_row(c.name, software, licence)
    yield table
    yield Text(headline(e), style="" if e.within_cap else "bold red")


def _comparison_tables(results: list[Estimate]) -> Iterator[RenderableType]:
    first = results[0]
    table = new_table(
        "hosting",
        "nodes",
        "infra/yr",
        "year 1",
        f"{first.horizon_years} years",
        "cap",
        "prices",
        title=f"{first.city}: cost by hosting option in EUR (first-year cap {first.cap:,}; staff "
        f"{first.staff_first_year:,.0f} in the first year on every option)",
    )
    for column in table.columns:
        column.no_wrap = True
    for column in table.columns[2:5]:
        column.justify = "right"
    for e in results:
        table.add_row(
            e.sheet.id,
            f"{e.node_count} x {e.node_type.name}",
            f"{e.infrastructure_per_year:,.0f}",
            f"{e.first_year_total:,.0f}",
            f"{e.horizon_total:,.0f}",
            "ok" if e.within_cap else "OVER",
            e.sheet.date.isoformat() + ("*" if e.stale_prices else ""),
        )
    yield table
    if any(e.stale_prices for e in results):
        yield "* the sheet has a price older than a year (see the warnings)"
