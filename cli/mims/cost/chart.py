"""A bar chart a council can put on a slide: stacked bars (infrastructure, staff set-up, staff
operations, extras) against the first-year cap. SVG is written here with no dependency; PNG needs
matplotlib (`pip install 'mims[cost-chart]'`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from mims.cost.model import Estimate
from mims.errors import UsageError

SEGMENTS = ("infrastructure", "staff set-up", "staff operations", "extras")
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
COLOURS = {"infrastructure": "#0072B2", "staff set-up": "#E69F00", "staff operations": "#009E73", "extras": "#CC79A7"}
CAP_COLOUR = "#D55E00"
FORMATS = (".svg", ".png")


@dataclass(frozen=True)
class BarChart:
    title: str
    subtitle: str
    rows: list[tuple[str, dict[str, float]]]  # label -> EUR per segment
    cap: float
    cap_rows: int  # the cap line spans this many rows from the top: the first-year ones

    @property
    def segments(self) -> list[str]:
        """The segments some bar has: no legend entry for extras nobody listed."""
        return [s for s in SEGMENTS if any(parts.get(s, 0) > 0 for _, parts in self.rows)]

    @property
    def scale(self) -> float:
        return max([sum(parts.values()) for _, parts in self.rows] + [self.cap, 1.0]) * 1.08


def _parts(e: Estimate, years: int | None) -> dict[str, float]:
    def total(test) -> float:
        return sum(line.over(years) if years else line.first_year for line in e.lines if test(line))

    return {
        "infrastructure": total(lambda line: line.infrastructure),
        "staff set-up": total(lambda line: line.category == "staff set-up"),
        "staff operations": total(lambda line: line.category == "staff operations"),
        "extras": total(lambda line: line.category == "extras"),
    }


def single_chart(e: Estimate, display_name: str) -> BarChart:
    return BarChart(
        title=f"{display_name}: MIMs platform cost on {e.sheet.name}",
        subtitle=(
            f"{e.node_count} x {e.node_type.name}; oldest price {e.sheet.date.isoformat()}; "
            "EUR; the first-year cap dashed"
        ),
        rows=[("First year", _parts(e, None)), (f"{e.horizon_years} years", _parts(e, e.horizon_years))],
        cap=e.cap,
        cap_rows=1,
    )


def compare_chart(estimates: list[Estimate], display_name: str) -> BarChart:
    return BarChart(
        title=f"{display_name}: first-year MIMs platform cost by hosting option",
        subtitle="EUR; the first-year cap dashed; the same staff assumptions on every option",
        rows=[(f"{e.sheet.name} ({e.node_count} x {e.node_type.name})", _parts(e, None)) for e in estimates],
        cap=estimates[0].cap,
        cap_rows=len(estimates),
    )


def write_chart(chart: BarChart, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"--chart {path}: the file name must end in .svg or .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".svg":
        path.write_text(to_svg(chart))
    else:
        to_png(chart, path)


def _money(amount: float) -> str:
    return f"EUR {amount:,.0f}"


def to_svg(chart: BarChart) -> str:
    longest = max(len(label) for label, _ in chart.rows)
    label_w, bar_w, value_w = round(40 + 7.7 * longest), 560, 120  # about 7.7 px a character at 14 px
    top, row_h, bar_h = 78, 46, 28
    width = label_w + bar_w + value_w
    height = top + row_h * len(chart.rows) + 70
    x0 = label_w

    def x(amount: float) -> float:
        return x0 + bar_w * amount / chart.scale

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" role="img">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="16" y="30" font-size="19" font-weight="bold" fill="#222">{escape(chart.title)}</text>',
        f'<text x="16" y="54" font-size="13" fill="#555">{escape(chart.subtitle)}</text>',
    ]
    # The cap line first, so bar labels are drawn over it.
    cap_x = x(chart.cap)
    bottom = top + row_h * chart.cap_rows - (row_h - bar_h)
    out.append(
        f'<line x1="{cap_x:.1f}" y1="{top - 8}" x2="{cap_x:.1f}" y2="{bottom + 8}" stroke="{CAP_COLOUR}" '
        f'stroke-width="2" stroke-dasharray="6,4"/>'
    )
    out.append(
        f'<text x="{cap_x:.1f}" y="{top - 12}" font-size="12" text-anchor="middle" '
        f'fill="{CAP_COLOUR}">first-year cap {_money(chart.cap)}</text>'
    )
    for index, (label, parts) in enumerate(chart.rows):
        y = top + index * row_h
        out.append(
            f'<text x="{x0 - 10}" y="{y + bar_h / 2 + 5}" font-size="14" text-anchor="end" '
            f'fill="#222">{escape(label)}</text>'
        )
        left = 0.0
        for segment in chart.segments:
            amount = parts.get(segment, 0.0)
            if amount <= 0:
                continue
            out.append(
                f'<rect x="{x(left):.1f}" y="{y}" width="{max(x(left + amount) - x(left), 1):.1f}" '
                f'height="{bar_h}" fill="{COLOURS[segment]}"><title>{escape(segment)}: '
                f"{_money(amount)}</title></rect>"
            )
            left += amount
        out.append(
            f'<text x="{x(left) + 6:.1f}" y="{y + bar_h / 2 + 5}" font-size="14" font-weight="bold" '
            f'fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">{_money(left)}</text>'
        )
    legend_y = height - 24
    legend_x = 16.0
    for segment in chart.segments:
        out.append(f'<rect x="{legend_x:.0f}" y="{legend_y - 11}" width="14" height="14" fill="{COLOURS[segment]}"/>')
        out.append(f'<text x="{legend_x + 20:.0f}" y="{legend_y + 1}" font-size="13" fill="#333">{segment}</text>')
        legend_x += 40 + 8 * len(segment)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_png(chart: BarChart, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            "PNG charts need matplotlib: pip install 'mims[cost-chart]', or write an .svg chart, "
            "which needs nothing extra"
        ) from None
    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    labels = [label for label, _ in chart.rows][::-1]
    figure, axes = pyplot.subplots(figsize=(11, 1.6 + 0.7 * len(chart.rows)), dpi=150)
    left = [0.0] * len(labels)
    for segment in chart.segments:
        values = [parts.get(segment, 0.0) for _, parts in chart.rows][::-1]
        axes.barh(labels, values, left=left, color=COLOURS[segment], label=segment, height=0.6)
        left = [a + b for a, b in zip(left, values)]
    for row, total in enumerate(left):
        axes.text(total + chart.scale * 0.01, row, _money(total), va="center", fontweight="bold")
    axes.vlines(
        chart.cap,
        len(labels) - chart.cap_rows - 0.45,
        len(labels) - 0.55,
        color=CAP_COLOUR,
        linestyle="--",
        linewidth=2,
        label=f"first-year cap {_money(chart.cap)}",
    )
    axes.set_xlim(0, chart.scale * 1.12)
    axes.set_xlabel("EUR")
    axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes.set_title(f"{chart.title}\n{chart.subtitle}", loc="left", fontsize=11)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / (len(labels) + 1)), ncol=5, frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, format="png", bbox_inches="tight")
    pyplot.close(figure)
