"""Price sheets: one YAML file per hosting option under `prices/`, every price with its currency,
unit, date and source. A city adds or replaces sheets with `budget.price_sheets_dir`."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from mims import paths
from mims.blueprint.problems import pydantic_problems
from mims.errors import ChartError
from mims.yamlsource import load_trusted_yaml, load_yaml

if TYPE_CHECKING:  # the blueprint loader imports this module
    from mims.blueprint.model import Budget

CURRENCY = "EUR"
MAX_AGE_DAYS = 365
AUTO = "auto"
SHEET_ID_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NODE_TYPE_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SheetId = Annotated[str, StringConstraints(pattern=SHEET_ID_PATTERN, max_length=24)]  # = budget.hosting
NodeTypeName = Annotated[str, StringConstraints(pattern=NODE_TYPE_PATTERN, max_length=40)]
Unit = Literal["month", "GB-month", "GB", "vCPU-month", "GiB-month"]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(Strict):
    """One price: how much, in which currency, per what, as observed when, and where."""

    amount: float = Field(ge=0, le=1_000_000)
    currency: Literal["EUR"]
    unit: Unit
    date: dt.date = Field(description="When the figure was observed (not when the file was edited).")
    source: Text
    note: Text | None = None

    def expect_unit(self, unit: str, what: str) -> None:
        if self.unit != unit:
            raise ValueError(f"{what} must be priced per `{unit}`, not per `{self.unit}`")


class BlockStorage(Price):
    min_volume_gb: int = Field(1, ge=1, le=100_000, description="smallest volume the provider sells")


class BackupStorage(Price):
    minimum_per_month: float = Field(0, ge=0, le=100_000, description="base fee charged for any use")


class Egress(Price):
    included_gb: float = Field(0, ge=0, description="free outgoing traffic per month for the account")
    included_gb_per_node: float = Field(0, ge=0, description="free outgoing traffic per month per node")


class Compute(Strict):
    """Per-resource node prices, for providers that sell any combination of vCPU and memory."""

    vcpu: Price
    memory: Price

    @model_validator(mode="after")
    def _units(self) -> Compute:
        self.vcpu.expect_unit("vCPU-month", "compute.vcpu")
        self.memory.expect_unit("GiB-month", "compute.memory")
        return self


class NodeType(Strict):
    name: NodeTypeName
    vcpu: float = Field(gt=0, le=1024)
    memory_gib: float = Field(gt=0, le=16384)
    price: Price | None = Field(None, description="monthly price; omit to price the node from `compute`")


class Sheet(Strict):
    id: SheetId
    name: Text
    kind: Literal["eu-provider", "hyperscaler", "on-premises"]
    region: Text
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""
    compute: Compute | None = None
    control_plane: Price
    load_balancer: Price
    block_storage: BlockStorage
    backup_storage: BackupStorage
    egress: Egress
    node_types: list[NodeType] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Sheet:
        self.control_plane.expect_unit("month", "control_plane")
        self.load_balancer.expect_unit("month", "load_balancer")
        self.block_storage.expect_unit("GB-month", "block_storage")
        self.backup_storage.expect_unit("GB-month", "backup_storage")
        self.egress.expect_unit("GB", "egress")
        names = [n.name for n in self.node_types]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"node type `{repeated[0]}` is listed twice")
        if AUTO in names:
            raise ValueError(f"`{AUTO}` is reserved (the cheapest node type that fits)")
        for node in self.node_types:
            if node.price is None and self.compute is None:
                raise ValueError(f"node type `{node.name}` has no price and the sheet has no `compute` prices")
            if node.price is not None:
                node.price.expect_unit("month", f"node type `{node.name}`")
        return self

    def node_type(self, name: str) -> NodeType:
        for node in self.node_types:
            if node.name == name:
                return node
        raise KeyError(name)

    def node_price(self, node: NodeType) -> float:
        """Monthly price of one node of this type."""
        if node.price is not None:
            return node.price.amount
        assert self.compute is not None
        return node.vcpu * self.compute.vcpu.amount + node.memory_gib * self.compute.memory.amount

    def prices(self) -> dict[str, Price]:
        """Every price on the sheet by a readable name."""
        found: dict[str, Price] = {}
        if self.compute:
            found["compute.vcpu"] = self.compute.vcpu
            found["compute.memory"] = self.compute.memory
        for name in ("control_plane", "load_balancer", "block_storage", "backup_storage", "egress"):
            found[name] = getattr(self, name)
        for node in self.node_types:
            if node.price is not None:
                found[f"node type {node.name}"] = node.price
        return found

    @property
    def date(self) -> dt.date:
        """The sheet is as old as its oldest price."""
        return min(p.date for p in self.prices().values())

    def stale_prices(self, today: dt.date) -> list[str]:
        """Prices observed more than a year before `today`, as `name (date)`."""
        return [
            f"{name} ({price.date.isoformat()})"
            for name, price in self.prices().items()
            if (today - price.date).days > MAX_AGE_DAYS
        ]

    def unpriced(self) -> bool:
        """True when every node is free: a placeholder sheet (on-premises) not yet filled in."""
        return all(self.node_price(n) == 0 for n in self.node_types)


def load_sheet(path: Path) -> Sheet:
    data = load_trusted_yaml(path)
    try:
        sheet = Sheet.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, load_yaml(path), Sheet)
        raise ChartError("price sheet is broken:\n" + "\n".join(str(p) for p in problems)) from None
    if sheet.id != path.stem:
        raise ChartError(f"{path}: id `{sheet.id}` must match the file name `{path.stem}`")
    return sheet


@lru_cache(maxsize=8)
def _load_folder(folder: Path) -> dict[str, Sheet]:
    return {path.stem: load_sheet(path) for path in sorted(folder.glob("*.yaml"))}


def shipped_sheets() -> dict[str, Sheet]:
    return dict(_load_folder(paths.prices_dir()))


def sheets_for(price_sheets_dir: str | None, base_dir: Path | None) -> dict[str, Sheet]:
    """The shipped sheets, with the city's own (from `budget.price_sheets_dir`) added or replacing them."""
    sheets = shipped_sheets()
    if price_sheets_dir:
        folder = (base_dir or Path.cwd()) / price_sheets_dir
        sheets.update(_load_folder(folder.resolve()))
    return sheets


def hosting_problems(budget: Budget, base_dir: Path | None) -> list[tuple[tuple[str, ...], str]]:
    """`budget.hosting` and `budget.node_type` checked against the price sheets, as (field path, message)."""
    if budget.price_sheets_dir:
        folder = (base_dir or Path.cwd()) / budget.price_sheets_dir
        if not folder.is_dir():
            return [
                (("budget", "price_sheets_dir"), f"`{budget.price_sheets_dir}` is not a folder (looked for {folder})")
            ]
    try:
        sheets = sheets_for(budget.price_sheets_dir, base_dir)
    except ChartError as exc:
        return [(("budget", "price_sheets_dir"), str(exc))]
    if budget.hosting not in sheets:
        return [
            (("budget", "hosting"), f"no price sheet `{budget.hosting}`; choose one of {', '.join(sorted(sheets))}")
        ]
    sheet = sheets[budget.hosting]
    names = [n.name for n in sheet.node_types]
    if budget.node_type != AUTO and budget.node_type not in names:
        return [
            (
                ("budget", "node_type"),
                f"`{budget.node_type}` is not a node type of `{sheet.id}`; choose `auto` or one of {', '.join(names)}",
            )
        ]
    return []
