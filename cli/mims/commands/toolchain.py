"""`mims toolchain install` installs the binaries mims runs (Pulumi, its Kubernetes provider, the
simulated cluster's control plane and kwok): found on this machine, downloaded from their official
releases, or built from the Go module proxy; `mims toolchain status` says which are there and where
they came from (docs/toolchain.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from mims import toolchain
from mims.commands.options import Quiet, json_flag
from mims.console import err, new_table, output_format, show
from mims.errors import UsageError
from mims.progress import progress_lines
from mims.toolchain.sources import SOURCES, SOURCES_ENV, VERBS, resolve_sources

app = typer.Typer(
    name="toolchain",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="Install and inspect the binaries mims runs (Pulumi, the provider, the simulated cluster).",
)

STATE_STYLE = {"present": "green", "missing": "red", "stale": "yellow"}
InstallJson = Annotated[bool, json_flag("the installed tools")]
StatusJson = Annotated[bool, json_flag("the status")]


def register(parent: typer.Typer) -> None:
    parent.add_typer(app)


@app.command("install")
def install(
    tools: list[str] = typer.Argument(
        None,
        metavar="[TOOL]...",
        help="Tools to install (default: all): pulumi, pulumi-kubernetes, kubernetes, kubectl, etcd, kwok.",
    ),
    source: list[str] = typer.Option(
        None,
        "--source",
        metavar="SOURCE",
        help=f"Where tools may come from, tried in the order "
        f"{', '.join(SOURCES)} (repeatable or a comma list; default: "
        f"${SOURCES_ENV}, else all). MIMS_OFFLINE=1 rules out download.",
    ),
    as_json: InstallJson = False,
    quiet: Quiet = False,
) -> None:
    """Install the tools that are not installed yet, each from the first source that has it: the same
    version already on this machine (linked), the official release download, or a build from the Go
    module proxy (a cold build of all takes about 20 minutes on 2 cores). Installed tools are left
    alone."""
    fmt = output_format(as_json)
    names = list(dict.fromkeys(tools)) if tools else None
    _, known = toolchain.load_tools()
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UsageError(f"unknown tool {', '.join(unknown)}; choose from {', '.join(known)}")
    sources = resolve_sources(source)
    with _Reporter(quiet) as reporter:
        result = toolchain.install(names, progress=reporter, sources=sources)
    root = toolchain.toolchain_dir()
    show(
        fmt,
        data=lambda: {
            "toolchain_dir": str(root),
            "pulumi_home": str(toolchain.pulumi_home()),
            "tools": [
                {
                    "name": t.name,
                    "version": t.version,
                    "dir": str(t.dir),
                    "built": t.built,
                    "source": t.source,
                    "binaries": {b: str(p) for b, p in t.binaries.items()},
                    "seconds": round(t.seconds, 1),
                }
                for t in result.values()
            ],
        },
        table=lambda: _installed(result, root),
    )


def _installed(result: dict[str, toolchain.InstalledTool], root: Path) -> Iterator[RenderableType]:
    table = _table("tool", "version", "this run", "path")
    for t in result.values():
        verb = VERBS.get(t.source, "installed")
        table.add_row(
            t.name, t.version, f"{verb} in {t.seconds:.0f}s" if t.built else f"already {verb}", _relative(t.dir, root)
        )
    yield table
    yield from _dirs(root)


@app.command("status")
def status(as_json: StatusJson = False) -> None:
    """Show which tools are installed (present), not installed (missing) or out of date (stale), where,
    and where they came from (built, downloaded, or linked to binaries found on this machine)."""
    fmt = output_format(as_json)
    statuses = toolchain.status()
    root = toolchain.toolchain_dir()
    show(
        fmt,
        data=lambda: {
            "toolchain_dir": str(root),
            "pulumi_home": str(toolchain.pulumi_home()),
            "ready": all(s.state == "present" for s in statuses),
            "tools": [
                {
                    "name": s.name,
                    "version": s.version,
                    "state": s.state,
                    "dir": str(s.dir),
                    "source": s.source or None,
                    "origin": s.origin or None,
                    "build_seconds": s.build_seconds,
                    "binaries": {b: str(p) for b, p in s.binaries.items()},
                    "plugin_dir": str(s.plugin_dir) if s.plugin_dir else None,
                }
                for s in statuses
            ],
        },
        table=lambda: _statuses(statuses, root),
    )


def _statuses(statuses: list[toolchain.ToolStatus], root: Path) -> Iterator[RenderableType]:
    table = _table("tool", "version", "state", "source", "path")
    for s in statuses:
        table.add_row(
            s.name, s.version, f"[{STATE_STYLE.get(s.state, '')}]{s.state}[/]", _source_cell(s), _relative(s.dir, root)
        )
    yield table
    yield from _dirs(root)
    for s in statuses:
        if s.state == "present" and s.source == "present":
            yield f"{s.name} links to {s.origin}"
    todo = [s.name for s in statuses if s.state != "present"]
    if todo:
        yield (
            f"{len(statuses) - len(todo)} of {len(statuses)} installed; `mims toolchain install` "
            f"installs {', '.join(todo)} (docs/toolchain.md)"
        )
    else:
        yield f"all {len(statuses)} tools installed"


def _source_cell(s: toolchain.ToolStatus) -> str:
    """`built 12s`, `downloaded` or `linked` for an installed tool (`mims toolchain status --json` and
    the lines under the table say from where)."""
    if s.state != "present" or not s.source:
        return ""
    if s.source == "build" and s.build_seconds is not None:
        return f"built {s.build_seconds:.0f}s"
    return VERBS.get(s.source, s.source)


class _Reporter:
    """The progress of `toolchain.install`: one stderr line per step with the seconds since the install
    began, and on a terminal a spinner with a running clock under them; with `quiet` neither."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lines = progress_lines(quiet)
        self.started = time.monotonic()
        self.spinner: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> _Reporter:
        if err.is_terminal and not self.quiet:
            self.spinner = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
            )
            self.spinner.start()
        return self

    def __exit__(self, *_exc) -> None:
        if self.spinner is not None:
            self.spinner.stop()

    def say(self, text: str, style: str | None = None) -> None:
        self.lines.say(f"{time.monotonic() - self.started:5.0f}s  {text}", style)
        if self.spinner is not None:
            if self.task is None:
                self.task = self.spinner.add_task(text)
            self.spinner.update(self.task, description=text)


def _table(*columns: str) -> Table:
    table = new_table(*columns)
    for column in table.columns[:-1]:
        column.no_wrap = True
    table.columns[-1].overflow = "fold"
    return table


def _relative(path: Path, root: Path) -> str:
    """Paths in the tables are relative to the toolchain dir printed under them (--json has them whole)."""
    return f"{path.relative_to(root)}/" if path.is_relative_to(root) else str(path)


def _dirs(root: Path) -> Iterator[str]:
    yield f"toolchain dir: {root}"
    yield f"PULUMI_HOME:   {toolchain.pulumi_home()}"
