"""The options and arguments more than one command takes, declared once so they read, behave and
default alike everywhere (and an environment variable works for every command that takes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

Blueprint = Annotated[Path, typer.Argument(help="Blueprint YAML file.", envvar="MIMS_BLUEPRINT")]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print no progress lines on stderr (errors and warnings still go there).")
]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed when stdin is not a terminal).")
]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig", envvar="MIMS_KUBECONFIG", help="Deploy to this kubeconfig instead of the blueprint's cluster."
    ),
]
Context = Annotated[
    str | None,
    typer.Option(
        "--context", envvar="MIMS_CONTEXT", help="Deploy to this kubeconfig context instead of the blueprint's cluster."
    ),
]
AllowOverBudget = Annotated[
    bool, typer.Option("--allow-over-budget", help="Go on although the cost estimate is over budget.cap_eur.")
]
ClusterName = Annotated[str, typer.Option("--name", help="Cluster name; blueprints use the cluster named mims.")]
KindCluster = Annotated[bool, typer.Option("--kind", help="A kind cluster instead of a simulated one.")]


def json_flag(what: str) -> Any:
    """`--json` for `Annotated[bool, json_flag(...)]` (an alias a type checker can read); `what` says
    what it prints, e.g. "the checks"."""
    return typer.Option("--json", help=f"Print {what} as JSON to stdout.")


def markdown_flag(what: str) -> Any:
    """`--markdown` for `Annotated[bool, markdown_flag(...)]`; `what` says what it prints."""
    return typer.Option("--markdown", help=f"Print {what} as Markdown.")
