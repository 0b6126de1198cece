"""`mims verify`: probe the live platform, MIM by MIM (the probes are in `mims.verify`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import RenderableType

from mims.commands.options import Blueprint, Context, Kubeconfig, Quiet, json_flag
from mims.console import Format, new_table, output_format, show
from mims.errors import UsageError, VerificationFailed
from mims.progress import Progress, progress_lines

if TYPE_CHECKING:
    from mims.engine.deployment import Placement
    from mims.verify.report import Report, Result

Json = Annotated[bool, json_flag("the report")]
Junit = Annotated[
    Path | None, typer.Option("--junit", help="Also write the report as JUnit XML to this file (for CI).")
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address",
        envvar="MIMS_VERIFY_ADDRESS",
        help="Send public requests to this address instead of the entrance's load balancer address "
        "(or DNS when it has none); Host and TLS server name stay the public names.",
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option(
        "--ca-file", envvar="MIMS_VERIFY_CA_FILE", help="Also trust this CA (PEM) for the city's certificates."
    ),
]
Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Probe only this MIM (MIM1, MIM2, MIM3, MIM5, MIM6, ops); repeatable."),
]

STATUS_STYLE = {"pass": "green", "fail": "red", "skip": "yellow"}


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    blueprint: Blueprint,
    as_json: Json = False,
    junit: Junit = None,
    address: Address = None,
    ca_file: CaFile = None,
    only: Only = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    quiet: Quiet = False,
) -> None:
    """Probe the deployed platform through its public endpoints: NGSI-LD (MIM1), @context documents
    (MIM2), the DCAT-AP catalogue (MIM3), the algorithm register (MIM5), tokens, TLS and isolation
    (MIM6), Prometheus targets. Exits 8 when a probe fails, 9 when nothing live can be probed."""
    from mims.engine.deployment import place
    from mims.engine.progress import Reporter
    from mims.verify import check_only

    fmt = output_format(as_json)
    check_only(only)
    progress = progress_lines(quiet or fmt is not Format.TABLE)
    placement = place(blueprint, kubeconfig=kubeconfig, context=context, reporter=Reporter(progress), live_only=True)
    report = run_verification(placement, progress, junit=junit, address=address, ca_file=ca_file, only=only)
    show(fmt, data=report.as_dict, table=lambda: report_tables(report))
    fail_on(report)


def run_verification(
    placement: Placement,
    progress: Progress,
    *,
    junit: Path | None = None,
    address: str | None = None,
    ca_file: Path | None = None,
    only: list[str] | None = None,
) -> Report:
    """What `mims verify` and `mims up --verify` share: the probes, their progress lines, the JUnit file."""
    from mims.verify import verify as run
    from mims.verify.public import split_address

    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--ca-file {ca_file}: no such file")
    if address is not None:
        try:
            split_address(address, 0)
        except ValueError:
            raise UsageError(f"--address {address}: not HOST, HOST:PORT or [IPV6]:PORT") from None
    cluster = placement.cluster
    city = placement.rendering.loaded.blueprint.city.name
    progress.say(f"verify: {city} on {cluster.kind} cluster `{cluster.name}`")
    report = run(
        placement.rendering,
        cluster,
        address=address,
        ca_file=str(ca_file) if ca_file else None,
        only=only,
        on_result=lambda r: progress.say(_line(r), STATUS_STYLE[r.status.value]),
    )
    if junit is not None:
        junit.write_text(report.junit())
    return report


def fail_on(report: Report) -> None:
    if not report.ok:
        count = len(report.failed)
        raise VerificationFailed(f"{count} probe{'s' if count != 1 else ''} failed (see the report above)")


def _line(result: Result) -> str:
    text = f"{result.status.value:4} {result.mim} {result.component}: {result.probe}"
    return f"{text}: {result.message}" if result.message and result.status.value != "pass" else text


def report_tables(report: Report) -> Iterator[RenderableType]:
    for mim, results in report.sections():
        table = new_table("result", "component", "probe", "detail", title=f"{mim.title} - {mim.specification}")
        for r in results:
            table.add_row(r.status.value, r.component, r.probe, r.message, style=STATUS_STYLE[r.status.value])
        yield table
    counts = report.counts()
    yield f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
