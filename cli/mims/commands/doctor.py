"""`mims doctor`: whether this machine has what mims needs (the checks are in `mims.doctor`)."""

from __future__ import annotations

import typer
from rich.markup import escape

from mims import doctor as core
from mims.console import new_table, out, print_json

STATE_STYLE = {"ok": "green", "warn": "yellow", "missing": "red"}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check Python, the toolchain, Go, the Pulumi SDKs, writable directories, a container runtime and
    the passphrase source. Exits 4 when a required tool is missing and cannot be built here."""
    checks = core.run_checks()
    if as_json:
        print_json({"ok": not any(c.state == "missing" for c in checks),
                    "checks": [c.as_dict() for c in checks]})
    else:
        table = new_table("check", "state", "detail")
        table.columns[0].no_wrap = table.columns[1].no_wrap = True
        table.columns[2].overflow = "fold"
        for c in checks:
            detail = c.detail + (f"; fix: {c.fix}" if c.fix else "")
            table.add_row(c.name, f"[{STATE_STYLE[c.state]}]{c.state}[/]", escape(detail))
        out.print(table)
        out.print(", ".join(f"{sum(c.state == s for c in checks)} {s}" for s in STATE_STYLE), markup=False)
    error = core.blocking_error(checks)
    if error is not None:
        raise error
