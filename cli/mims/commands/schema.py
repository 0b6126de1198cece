"""`mims schema`: the blueprint JSON Schema (for editors and CI), or its Markdown reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mims.blueprint.schema import json_schema_text, markdown_reference
from mims.commands.options import markdown_flag
from mims.console import print_text

Markdown = Annotated[bool, markdown_flag("the reference (instead of the JSON Schema)")]


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)


def schema(
    markdown: Markdown = False,
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Print the blueprint JSON Schema generated from the model."""
    text = markdown_reference() if markdown else json_schema_text()
    if output:
        output.write_text(text)
    else:
        print_text(text)
