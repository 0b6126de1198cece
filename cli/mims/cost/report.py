"""An estimate as data (`--json`) and as Markdown (`--markdown`). Amounts are rounded to cents here,
and only here."""

from __future__ import annotations

from mims.cost.model import CATEGORIES, Estimate

GIB = 2**30


def money(amount: float) -> float:
    return round(amount, 2) + 0.0  # no -0.0


def as_dict(e: Estimate) -> dict:
    budget = e.budget
    return {
        "blueprint": e.blueprint,
        "city": e.city,
        "currency": e.currency,
        "hosting": e.sheet.id,
        "hosting_name": e.sheet.name,
        "hosting_kind": e.sheet.kind,
        "price_sheet": {
            "id": e.sheet.id,
            "date": e.sheet.date.isoformat(),
            "stale": bool(e.stale_prices),
            "stale_prices": e.stale_prices,
        },
        "node_type": e.node_type.name,
        "node_type_auto": e.node_type_auto,
        "node": {
            "vcpu": e.node_type.vcpu,
            "memory_gib": e.node_type.memory_gib,
            "price_per_month": money(e.node_price),
            "system_reserve": {"cpu": e.reserve[0] / 1000, "memory_gib": round(e.reserve[1] / GIB, 3)},
            "allocatable": {"cpu": e.allocatable[0] / 1000, "memory_gib": round(e.allocatable[1] / GIB, 3)},
        },
        "node_count": e.node_count,
        "sized_by": {"cpu": "requests", "memory": budget.size_memory_by},
        "packing": [
            {
                "node": i,
                "cpu": b.used_cpu_m / 1000,
                "memory_gib": round(b.used_memory / GIB, 3),
                "pods": [item.name for item in b.items],
            }
            for i, b in enumerate(e.nodes, start=1)
        ],
        "infrastructure_per_month": money(e.infrastructure_per_month),
        "infrastructure_per_year": money(e.infrastructure_per_year),
        "staff_first_year": money(e.staff_first_year),
        "extras_first_year": money(e.extras_first_year),
        "first_year_total": money(e.first_year_total),
        "horizon_years": e.horizon_years,
        "horizon_total": money(e.horizon_total),
        "cap": e.cap,
        "within_cap": e.within_cap,
        "headroom": money(e.headroom),
        "categories": [
            {"category": c, "first_year": money(first), "horizon": money(horizon)}
            for c, first, horizon in e.by_category()
        ],
        "lines": [
            {
                "category": line.category,
                "item": line.item,
                "quantity": round(line.quantity, 3),
                "unit": line.unit,
                "unit_price": line.unit_price,
                "per": line.per,
                "amount": money(line.amount),
                "first_year": money(line.first_year),
                "horizon": money(line.over(e.horizon_years)),
                "source": line.source,
                "date": line.date,
            }
            for line in e.lines
        ],
        "components": [
            {
                "name": c.name,
                "implementation": c.implementation,
                "pods": c.pods,
                "requests": {"cpu": c.cpu_request_m / 1000, "memory_gib": round(c.memory_request / GIB, 3)},
                "limits": {"cpu": c.cpu_limit_m / 1000, "memory_gib": round(c.memory_limit / GIB, 3)},
                "storage_gib": round(c.storage / GIB, 3),
                "load_balancers": c.load_balancers,
                "share": round(c.share, 4),
                "infrastructure_per_year": money(c.infrastructure_per_year),
                "licences": [{"software": s, "licence": lic, "cost": 0} for s, lic in c.licences],
            }
            for c in e.components
        ],
        "assumptions": {
            "staff": budget.staff.model_dump(),
            "egress_gb_per_month": budget.egress_gb_per_month,
            "backup_factor": budget.backup_factor,
            "extras": [x.model_dump() for x in budget.extras],
        },
        "warnings": e.warnings,
    }


def eur(amount: float) -> str:
    return f"{amount:,.2f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def headline(e: Estimate) -> str:
    verdict = (
        f"within the EUR {e.cap:,} cap (EUR {e.headroom:,.0f} to spare)"
        if e.within_cap
        else f"EUR {-e.headroom:,.0f} over the EUR {e.cap:,} cap"
    )
    return f"First year EUR {e.first_year_total:,.0f}, {verdict}; {e.horizon_years} years EUR {e.horizon_total:,.0f}."


def nodes_text(e: Estimate) -> str:
    how = "the cheapest type that holds every pod" if e.node_type_auto else "as the blueprint asks"
    return (
        f"{e.node_count} x {e.node_type.name} ({e.node_type.vcpu:g} vCPU, {e.node_type.memory_gib:g} GiB, "
        f"EUR {e.node_price:,.2f} a month), {how}; CPU sized by requests, memory by "
        f"{e.budget.size_memory_by}"
    )


def markdown(e: Estimate) -> str:
    years = e.horizon_years
    out = [
        f"# Cost of {e.city} on {e.sheet.name}",
        "",
        headline(e),
        "",
        f"Nodes: {nodes_text(e)}.",
        "",
        f"Prices: sheet `{e.sheet.id}`, oldest price {e.sheet.date.isoformat()}"
        + (" (**older than a year**)" if e.stale_prices else "")
        + ". All amounts in EUR.",
        "",
    ]
    for warning in e.warnings:
        out += [f"> Warning: {warning}", ""]
    out += ["## By category", "", f"| category | item | first year | {years} years |", "|---|---|---:|---:|"]
    for line in e.lines:
        out.append(f"| {line.category} | {_cell(line.item)} | {eur(line.first_year)} | {eur(line.over(years))} |")
    out += [
        f"| **infrastructure** | | **{eur(e.infrastructure_per_year)}** | "
        f"**{eur(sum(line.over(years) for line in e.lines if line.infrastructure))}** |",
        f"| **total** | | **{eur(e.first_year_total)}** | **{eur(e.horizon_total)}** |",
        "",
    ]
    out += [
        "## By component",
        "",
        "| component | implementation | pods | CPU requests | memory requests GiB | storage GiB | share "
        "| infrastructure per year | licences (no fees) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in e.components:
        licences = ", ".join(f"{s} ({lic})" for s, lic in c.licences) or "-"
        out.append(
            f"| {c.name} | {c.implementation} | {c.pods} | {c.cpu_request_m / 1000:g} | "
            f"{c.memory_request / GIB:.2f} | {c.storage / GIB:g} | {c.share:.1%} | "
            f"{eur(c.infrastructure_per_year)} | {_cell(licences)} |"
        )
    out += ["", "## Sources", "", "| line | unit price | unit | date | source |", "|---|---:|---|---|---|"]
    for line in e.lines:
        if line.category in CATEGORIES[:6]:
            out.append(
                f"| {line.category} | {line.unit_price:g} | {line.unit} | {line.date or ''} | {_cell(line.source)} |"
            )
    staff = e.budget.staff
    out += [
        "",
        f"Staff: {staff.setup_days:g} set-up days at EUR {staff.day_rate_eur:,.0f}, "
        f"{staff.operations_hours_per_month:g} operations hours a month at EUR {staff.hourly_rate_eur:,.0f} "
        "(`budget.staff`; defaults and their sources in docs/cost.md).",
    ]
    return "\n".join(out) + "\n"


def compare_markdown(estimates: list[Estimate]) -> str:
    first = estimates[0]
    years = first.horizon_years
    out = [
        f"# Cost of {first.city} by hosting option",
        "",
        f"Cap: EUR {first.cap:,} for the first year. Staff and extras are the same on every option. "
        "All amounts in EUR.",
        "",
        f"| hosting | nodes | infrastructure per year | staff first year | first year | {years} years "
        "| within cap | prices dated |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for e in estimates:
        out.append(
            f"| {e.sheet.name} (`{e.sheet.id}`) | {e.node_count} x {e.node_type.name} | "
            f"{eur(e.infrastructure_per_year)} | {eur(e.staff_first_year)} | {eur(e.first_year_total)} | "
            f"{eur(e.horizon_total)} | {'yes' if e.within_cap else '**no**'} | "
            f"{e.sheet.date.isoformat()}{' (stale)' if e.stale_prices else ''} |"
        )
    return "\n".join(out) + "\n"
