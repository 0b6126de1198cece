"""The cost of a rendered platform on one hosting option: price x quantity per line, monthly lines
over 12 months, set-up once; first-year and multi-year totals against the blueprint's cap.

How each number is made is written out in docs/cost.md; tests/cost/ redoes it by hand.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Literal

from mims.blueprint.model import Budget
from mims.charts.footprint import Pod, Workloads, workloads_of
from mims.charts.render import Rendering
from mims.cost.packing import Bin, DoesNotFit, Item, allocatable, first_fit_decreasing, system_reserve
from mims.cost.sheets import AUTO, CURRENCY, NodeType, Sheet, sheets_for
from mims.errors import InvalidInput

MONTHS = 12
GIB = 2**30

# Categories in the order tables show them; the first six are infrastructure.
INFRASTRUCTURE = ("nodes", "control plane", "load balancers", "block storage", "backup storage", "egress")
CATEGORIES = INFRASTRUCTURE + ("software licences", "staff set-up", "staff operations", "extras")
Per = Literal["once", "month", "year"]


@dataclass(frozen=True)
class Line:
    """One cost: `quantity` x `unit_price` = `amount` EUR per `per`."""

    category: str
    item: str
    quantity: float
    unit: str
    unit_price: float
    per: Per
    amount: float
    source: str = ""
    date: str | None = None

    @property
    def first_year(self) -> float:
        return self.amount * MONTHS if self.per == "month" else self.amount

    def over(self, years: int) -> float:
        if self.per == "once":
            return self.amount
        return self.amount * (MONTHS if self.per == "month" else 1) * years

    @property
    def infrastructure(self) -> bool:
        return self.category in INFRASTRUCTURE


@dataclass(frozen=True)
class ComponentCost:
    name: str
    implementation: str
    pods: int
    cpu_request_m: int
    memory_request: int
    cpu_limit_m: int
    memory_limit: int
    storage: int
    load_balancers: int
    share: float  # of the platform's requests: mean of its CPU share and its memory share
    infrastructure_per_year: float
    licences: list[tuple[str, str]]


@dataclass
class Estimate:
    city: str
    blueprint: str
    budget: Budget
    sheet: Sheet
    node_type: NodeType
    node_type_auto: bool
    node_price: float
    reserve: tuple[int, int]
    allocatable: tuple[int, int]
    nodes: list[Bin]
    lines: list[Line]
    components: list[ComponentCost]
    stale_prices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    currency: str = CURRENCY

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    @property
    def infrastructure_per_month(self) -> float:
        return sum(line.amount for line in self.lines if line.infrastructure and line.per == "month")

    @property
    def infrastructure_per_year(self) -> float:
        return sum(line.first_year for line in self.lines if line.infrastructure)

    @property
    def staff_first_year(self) -> float:
        return sum(line.first_year for line in self.lines if line.category.startswith("staff"))

    @property
    def extras_first_year(self) -> float:
        return sum(line.first_year for line in self.lines if line.category == "extras")

    @property
    def first_year_total(self) -> float:
        return sum(line.first_year for line in self.lines)

    @property
    def horizon_years(self) -> int:
        return self.budget.horizon_years

    @property
    def horizon_total(self) -> float:
        return sum(line.over(self.horizon_years) for line in self.lines)

    @property
    def cap(self) -> int:
        return self.budget.cap_eur

    @property
    def headroom(self) -> float:
        return self.cap - self.first_year_total

    @property
    def within_cap(self) -> bool:
        return round(self.first_year_total, 2) <= self.cap

    def by_category(self) -> list[tuple[str, float, float]]:
        """(category, first year, horizon) for every category, in table order."""
        return [
            (
                c,
                sum(line.first_year for line in self.lines if line.category == c),
                sum(line.over(self.horizon_years) for line in self.lines if line.category == c),
            )
            for c in CATEGORIES
        ]


def estimate(
    rendering: Rendering,
    *,
    hosting: str | None = None,
    sheets: dict[str, Sheet] | None = None,
    today: dt.date | None = None,
) -> Estimate:
    """Cost of `rendering` on `hosting` (default: the blueprint's). On another option than the
    blueprint's own, the node type is `auto`."""
    loaded = rendering.loaded
    budget = loaded.blueprint.budget
    if sheets is None:
        sheets = sheets_for(budget.price_sheets_dir, loaded.base_dir)
    hosting = hosting or budget.hosting
    sheet = sheets[hosting]
    wanted = budget.node_type if hosting == budget.hosting else AUTO
    work = workloads_of(rendering.objects())
    node_type, nodes = _choose_nodes(rendering, sheet, wanted, work, budget.size_memory_by)
    daemons = _daemon_needs(work, budget.size_memory_by)
    licences = sorted(
        {(lic.software, lic.licence) for chart in rendering.charts.values() for lic in chart.meta.licences}
    )
    lines = _lines(budget, sheet, node_type, len(nodes), work, len(licences))
    components = _components(rendering, sheet, work, lines, len(nodes))
    warnings = []
    stale = sheet.stale_prices(today or dt.date.today())
    if stale:
        warnings.append(
            f"price sheet `{sheet.id}` has prices older than a year: {', '.join(stale)}; "
            "check them against the sources (docs/cost.md explains how to update a sheet)"
        )
    if sheet.unpriced():
        warnings.append(
            f"price sheet `{sheet.id}` prices every node at zero: copy it into "
            "`budget.price_sheets_dir` and fill in your own figures (docs/cost.md)"
        )
    return Estimate(
        city=loaded.blueprint.city.name,
        blueprint=str(loaded.path),
        budget=budget,
        sheet=sheet,
        node_type=node_type,
        node_type_auto=wanted == AUTO,
        node_price=sheet.node_price(node_type),
        reserve=system_reserve(node_type.vcpu, node_type.memory_gib),
        allocatable=allocatable(node_type.vcpu, node_type.memory_gib, daemons),
        nodes=nodes,
        lines=lines,
        components=components,
        stale_prices=stale,
        warnings=warnings,
    )


def _daemon_needs(work: Workloads, size_by: str) -> tuple[tuple[int, int], ...]:
    return tuple((d.cpu_request_m, d.memory(size_by)) for d in work.daemons)


def _items(pods: list[Pod], size_by: str) -> list[Item]:
    return [Item(p.label, p.cpu_request_m, p.memory(size_by)) for p in pods]


def pack(work: Workloads, node: NodeType, size_by: str) -> list[Bin]:
    """The platform's pods on nodes of one type; at least one node. Raises DoesNotFit."""
    cpu_m, memory = allocatable(node.vcpu, node.memory_gib, _daemon_needs(work, size_by))
    for job in _items(work.jobs, size_by):  # Jobs run once: they need room, not a place for good
        if job.cpu_m > cpu_m or job.memory > memory:
            raise DoesNotFit(job)
    bins = first_fit_decreasing(_items(work.pods, size_by), cpu_m, memory)
    return bins or [Bin(cpu_m, memory)]


def _choose_nodes(
    rendering: Rendering, sheet: Sheet, wanted: str, work: Workloads, size_by: str
) -> tuple[NodeType, list[Bin]]:
    source = rendering.loaded.source
    if wanted != AUTO:
        node = sheet.node_type(wanted)
        try:
            return node, pack(work, node, size_by)
        except DoesNotFit as exc:
            raise InvalidInput(
                [source.problem(("budget", "node_type"), _too_big(exc.item, node, work, size_by))]
            ) from None
    options, misfits = [], {}
    for node in sheet.node_types:
        try:
            bins = pack(work, node, size_by)
        except DoesNotFit as exc:
            misfits[node.name] = exc.item
            continue
        # Cheapest in whole cents (2 x 39.46 and 1 x 78.92 tie), then fewer nodes, then smaller ones.
        monthly = round(sheet.node_price(node) * len(bins), 2)
        options.append(((monthly, len(bins), node.vcpu, node.memory_gib, node.name), node, bins))
    if not options:
        biggest = max(sheet.node_types, key=lambda n: (n.memory_gib, n.vcpu))
        raise InvalidInput(
            [
                source.problem(
                    ("budget", "hosting"),
                    f"no node type of `{sheet.id}` holds every "
                    f"pod: {_too_big(misfits[biggest.name], biggest, work, size_by)}",
                )
            ]
        )
    _, node, bins = min(options, key=lambda option: option[0])
    return node, bins


def _too_big(item: Item, node: NodeType, work: Workloads, size_by: str) -> str:
    cpu_m, memory = allocatable(node.vcpu, node.memory_gib, _daemon_needs(work, size_by))
    return (
        f"pod {item.name} needs {item.cpu_m}m CPU and {item.memory / 2**20:.0f} MiB memory "
        f"(memory {size_by}), more than a `{node.name}` node leaves for pods ({cpu_m}m CPU, "
        f"{memory / 2**20:.0f} MiB after the system reserve); choose a bigger node type or `auto`"
    )


def billed_gb(volume_size: int, sheet: Sheet) -> int:
    """A volume is billed in whole GB (1 GiB requested is billed as 1 GB), at least the provider's minimum."""
    return max(math.ceil(volume_size / GIB), sheet.block_storage.min_volume_gb)


def _lines(budget: Budget, sheet: Sheet, node: NodeType, count: int, work: Workloads, licences: int) -> list[Line]:
    node_price = sheet.node_price(node)
    if node.price is not None:
        node_source, node_date = node.price.source, node.price.date.isoformat()
    else:
        assert sheet.compute is not None
        node_source = (
            f"{node.vcpu:g} vCPU x {sheet.compute.vcpu.amount:g} + {node.memory_gib:g} GiB x "
            f"{sheet.compute.memory.amount:g}; {sheet.compute.vcpu.source}"
        )
        node_date = min(sheet.compute.vcpu.date, sheet.compute.memory.date).isoformat()
    lines = [
        Line(
            "nodes",
            f"{count} x {node.name} ({node.vcpu:g} vCPU, {node.memory_gib:g} GiB)",
            count,
            "node-month",
            node_price,
            "month",
            count * node_price,
            node_source,
            node_date,
        )
    ]

    cp = sheet.control_plane
    lines.append(
        Line(
            "control plane",
            "cluster control plane",
            1,
            "month",
            cp.amount,
            "month",
            cp.amount,
            cp.source,
            cp.date.isoformat(),
        )
    )

    lb = sheet.load_balancer
    names = ", ".join(f"{b.namespace}/{b.name}" for b in work.load_balancers) or "none"
    lines.append(
        Line(
            "load balancers",
            f"Services of type LoadBalancer: {names}",
            len(work.load_balancers),
            "month",
            lb.amount,
            "month",
            len(work.load_balancers) * lb.amount,
            lb.source,
            lb.date.isoformat(),
        )
    )

    bs = sheet.block_storage
    billed = sum(billed_gb(v.size, sheet) for v in work.volumes)
    requested = sum(v.gib for v in work.volumes)
    minimum = f", at least {bs.min_volume_gb} GB each" if bs.min_volume_gb > 1 else ""
    lines.append(
        Line(
            "block storage",
            f"{len(work.volumes)} volumes, {requested:g} GiB requested, {billed} GB billed{minimum}",
            billed,
            "GB-month",
            bs.amount,
            "month",
            billed * bs.amount,
            bs.source,
            bs.date.isoformat(),
        )
    )

    bk = sheet.backup_storage
    data = sum(v.gib for v in work.volumes if not v.holds_backups)  # backup volumes are block storage above
    backup_gb = data * budget.backup_factor
    backup = max(backup_gb * bk.amount, bk.minimum_per_month) if backup_gb > 0 else 0.0
    base = f", at least {bk.minimum_per_month:g} a month" if bk.minimum_per_month else ""
    lines.append(
        Line(
            "backup storage",
            f"{data:g} GiB of data volumes x {budget.backup_factor:g}{base}",
            backup_gb,
            "GB-month",
            bk.amount,
            "month",
            backup,
            bk.source,
            bk.date.isoformat(),
        )
    )

    eg = sheet.egress
    included = eg.included_gb + eg.included_gb_per_node * count
    billable = max(0.0, budget.egress_gb_per_month - included)
    lines.append(
        Line(
            "egress",
            f"{budget.egress_gb_per_month:,g} GB a month expected, {included:,g} GB included",
            billable,
            "GB",
            eg.amount,
            "month",
            billable * eg.amount,
            eg.source,
            eg.date.isoformat(),
        )
    )

    lines.append(
        Line(
            "software licences",
            f"{licences} pieces of software, no licence fees (listed per component)",
            licences,
            "licence",
            0.0,
            "year",
            0.0,
            "chart metadata `licences`",
        )
    )

    staff = budget.staff
    lines.append(
        Line(
            "staff set-up",
            f"{staff.setup_days:g} person-days x {staff.day_rate_eur:g}",
            staff.setup_days,
            "person-day",
            staff.day_rate_eur,
            "once",
            staff.setup_days * staff.day_rate_eur,
            "budget.staff (docs/cost.md)",
        )
    )
    lines.append(
        Line(
            "staff operations",
            f"{staff.operations_hours_per_month:g} hours a month x {staff.hourly_rate_eur:g}",
            staff.operations_hours_per_month,
            "hour",
            staff.hourly_rate_eur,
            "month",
            staff.operations_hours_per_month * staff.hourly_rate_eur,
            "budget.staff (docs/cost.md)",
        )
    )
    for extra in budget.extras:
        lines.append(
            Line("extras", extra.name, 1, extra.per, extra.amount_eur, extra.per, extra.amount_eur, "budget.extras")
        )
    return lines


def _components(
    rendering: Rendering, sheet: Sheet, work: Workloads, lines: list[Line], node_count: int
) -> list[ComponentCost]:
    """Each component's share of the requests, and of the infrastructure: its own volumes, load
    balancers and backups, plus its share of nodes, control plane and egress."""
    steady = work.pods + [d for d in work.daemons for _ in range(node_count)]
    total_cpu = sum(p.cpu_request_m for p in steady)
    total_memory = sum(p.memory_request for p in steady)
    monthly = {line.category: line.amount for line in lines if line.per == "month" and line.infrastructure}
    shared = monthly["nodes"] + monthly["control plane"] + monthly["egress"]
    backup = monthly["backup storage"]
    data_gib = sum(v.gib for v in work.volumes if not v.holds_backups)  # what off-site backup storage holds
    result = []
    for name, chart in sorted(rendering.charts.items()):
        pods = [p for p in steady if p.component == name]
        cpu = sum(p.cpu_request_m for p in pods)
        memory = sum(p.memory_request for p in pods)
        share = 0.5 * (cpu / total_cpu if total_cpu else 0) + 0.5 * (memory / total_memory if total_memory else 0)
        volumes = [v for v in work.volumes if v.component == name]
        balancers = [b for b in work.load_balancers if b.component == name]
        own = (
            sum(billed_gb(v.size, sheet) for v in volumes) * sheet.block_storage.amount
            + len(balancers) * sheet.load_balancer.amount
            + (backup * sum(v.gib for v in volumes if not v.holds_backups) / data_gib if data_gib else 0)
        )
        result.append(
            ComponentCost(
                name=name,
                implementation=chart.meta.implementation,
                pods=len(pods),
                cpu_request_m=cpu,
                memory_request=memory,
                cpu_limit_m=sum(p.cpu_limit_m for p in pods),
                memory_limit=sum(p.memory_limit for p in pods),
                storage=sum(v.size for v in volumes),
                load_balancers=len(balancers),
                share=share,
                infrastructure_per_year=(share * shared + own) * MONTHS,
                licences=[(lic.software, lic.licence) for lic in chart.meta.licences],
            )
        )
    return result
