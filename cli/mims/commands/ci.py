"""`mims ci init`: write the GitOps pipeline for a city's repository (the templates are in
`pipelines/`, the checks in `mims.gitops`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mims import gitops
from mims.commands.options import json_flag
from mims.console import new_table, output_format, show

ci_app = typer.Typer(help="The GitOps pipeline of a city's repository.", no_args_is_help=True)
defaults = gitops.PipelineOptions(blueprint="city.yaml")


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")


@ci_app.command("init")
def init(
    platform: Annotated[str, typer.Argument(help="github or gitlab.")],
    blueprint: Annotated[
        str,
        typer.Option("--blueprint", envvar="MIMS_BLUEPRINT", help="The blueprint, relative to the repository's root."),
    ] = defaults.blueprint,
    root: Annotated[Path, typer.Option("--dir", help="The repository's root.")] = Path("."),
    branch: Annotated[str, typer.Option("--branch", help="The branch that deploys.")] = defaults.branch,
    schedule: Annotated[
        str, typer.Option("--schedule", help="Cron line (UTC) of the drift check.")
    ] = defaults.schedule,
    environment: Annotated[
        str, typer.Option("--environment", help="The CI environment deployments run in (reviews, one at a time).")
    ] = defaults.environment,
    install: Annotated[
        str, typer.Option("--install", help="What the pipeline installs with pip (a version, a wheel URL, a Git URL).")
    ] = defaults.install,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing pipeline file.")] = False,
    as_json: Annotated[bool, json_flag("what was written and the secrets to set")] = False,
) -> None:
    """Write the pipeline: validate and plan (as a comment) on every pull or merge request, `mims up`
    on merge (one at a time), a scheduled drift check (`mims status --drift`)."""
    fmt = output_format(as_json)
    options = gitops.PipelineOptions(blueprint, branch, schedule, install, environment)
    written = gitops.write_pipeline(platform, options, root, force=force)
    spec = gitops.platforms()[platform]

    def tables():
        yield f"wrote {written} ({spec.title})"
        table = new_table("secret", "what", title="Set these in the CI's secret store")
        for name, what in spec.secrets.items():
            table.add_row(name, what)
        yield table
        yield spec.after + (f" Drift check schedule: {schedule}" if platform == "gitlab" else "")

    show(
        fmt,
        data=lambda: {"platform": platform, "file": str(written), "secrets": spec.secrets, "schedule": schedule},
        table=tables,
    )
