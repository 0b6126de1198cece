"""`mims doctor`: whether this machine has what mims needs (the checks are in `mims.doctor`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.markup import escape

from mims import doctor as core
from mims.commands.options import json_flag
from mims.console import new_table, output_format, show

STATE_STYLE = {"ok": "green", "warn": "yellow", "missing": "red"}
Json = Annotated[bool, json_flag("the checks")]


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(as_json: Json = False) -> None:
    """Check Python, the toolchain, Go, the Pulumi SDKs, writable directories, a container runtime and
    the passphrase source. Exits 4 when a required tool is missing and cannot be built here."""
    fmt = output_format(as_json)
    checks = core.run_checks()
    show(
        fmt,
        data=lambda: {"ok": not any(c.state == "missing" for c in checks), "checks": [c.as_dict() for c in checks]},
        table=lambda: _table(checks),
    )
    error = core.blocking_error(checks)
    if error is not None:
        raise error


def _table(checks: list[core.Check]) -> Iterator[RenderableType]:
    table = new_table("check", "state", "detail")
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    table.columns[2].overflow = "fold"
    for c in checks:
        detail = c.detail + (f"; fix: {c.fix}" if c.fix else "")
        table.add_row(c.name, f"[{STATE_STYLE[c.state]}]{c.state}[/]", escape(detail))
    yield table
    yield ", ".join(f"{sum(c.state == s for c in checks)} {s}" for s in STATE_STYLE)
