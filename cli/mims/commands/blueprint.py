"""Blueprint commands: `mims init` writes a starter, `mims validate` checks one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mims.blueprint import load_blueprint
from mims.blueprint.starter import StarterAnswers, write_starter
from mims.charts.output import summary
from mims.charts.render import Renderer
from mims.commands.options import Blueprint, Quiet, json_flag
from mims.console import err, interactive, output_format, show
from mims.cost.guard import over_cap_message
from mims.cost.model import estimate
from mims.errors import InvalidInput, UsageError
from mims.progress import progress_lines

Json = Annotated[bool, json_flag("a summary")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("validate")(validate)


def init(
    path: Path = typer.Argument(Path("blueprint.yaml"), help="Where to write the blueprint."),
    city: str = typer.Option(None, help="DNS-safe city name, e.g. alderbrook."),
    display_name: str = typer.Option(None, help="City name as people write it."),
    country: str = typer.Option(None, help="ISO 3166-1 alpha-2 code, e.g. NL."),
    domain: str = typer.Option(None, help="Domain for the public APIs, e.g. data.alderbrook.example."),
    profile: str = typer.Option("minimal-50k", help="minimal-50k or standard."),
    broker: str = typer.Option("orion-ld", help="NGSI-LD broker: orion-ld or scorpio."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    quiet: Quiet = False,
) -> None:
    """Write a starter blueprint. Asks for what is missing when run at a terminal."""
    answers = {"city": city, "display_name": display_name, "country": country, "domain": domain}
    missing = [k for k, v in answers.items() if not v]
    if missing and not interactive():
        flags = ", ".join("--" + k.replace("_", "-") for k in missing)
        raise UsageError(f"missing {flags} (no terminal to ask on)")
    prompts = {
        "city": "City short name (lowercase, e.g. alderbrook)",
        "display_name": "City display name",
        "country": "Country code (e.g. NL)",
        "domain": "Domain for the APIs (e.g. data.alderbrook.example)",
    }
    for key in missing:
        answers[key] = typer.prompt(prompts[key])
    write_starter(
        path,
        StarterAnswers(
            name=answers["city"],
            display_name=answers["display_name"],
            country=answers["country"],
            domain=answers["domain"],
            profile=profile,
            broker=broker,
        ),
        force=force,
    )
    progress_lines(quiet).say(f"wrote {path}; next: mims validate {path}")


def validate(
    blueprint: Blueprint,
    as_json: Json = False,
) -> None:
    """Check a blueprint, its register entries and @context files, and that it renders; warn when
    its first-year cost estimate is over `budget.cap_eur`."""
    fmt = output_format(as_json)
    try:
        rendering = Renderer().render(load_blueprint(blueprint))
        cost = estimate(rendering)
    except InvalidInput as exc:
        problems = [p.as_dict() for p in exc.problems]
        show(fmt, data=lambda: {"valid": False, "problems": problems})
        raise
    if not cost.within_cap:
        err.print(f"warning: {over_cap_message(cost)}", markup=False)
    result = summary(rendering)
    show(
        fmt,
        data=lambda: (
            {"valid": True}
            | result
            | {
                "budget": {
                    "hosting": cost.sheet.id,
                    "first_year_total": round(cost.first_year_total, 2),
                    "cap": cost.cap,
                    "within_cap": cost.within_cap,
                }
            }
        ),
        table=lambda: [
            f"{blueprint}: valid ({len(rendering.charts)} components, {result['objects']} objects "
            f"in {len(rendering.layers)} layers)"
        ],
    )
