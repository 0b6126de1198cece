"""Where output goes: results (a table, `--json` or `--markdown`) to stdout through `show`, progress
(`mims.progress`) and problems to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from mims.errors import UsageError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class Format(Enum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


def output_format(as_json: bool, as_markdown: bool = False) -> Format:
    """The format a command's `--json` and `--markdown` flags ask for; tables when neither."""
    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")
    return Format.JSON if as_json else Format.MARKDOWN if as_markdown else Format.TABLE


def show(
    fmt: Format,
    *,
    data: Callable[[], Any] | None = None,
    table: Callable[[], Iterable[RenderableType]] | None = None,
    markdown: Callable[[], str] | None = None,
) -> None:
    """A command's result on stdout in the chosen format; only that format is built. `data` is what
    `--json` prints; `table` yields tables and lines for people (a `str` is printed as it is, never
    read as rich markup; a `Text` carries its style); `markdown` is the text `--markdown` prints."""
    if fmt is Format.JSON:
        if data is not None:
            print_json(data())
    elif fmt is Format.MARKDOWN:
        if markdown is not None:
            print_text(markdown())
    elif table is not None:
        for item in table():
            out.print(Text(item) if isinstance(item, str) else item)


def print_json(data: Any) -> None:
    print_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def print_text(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def interactive() -> bool:
    """Prompts only when a person is at a terminal."""
    return sys.stdin.isatty()


def need_confirmation_source(yes: bool) -> None:
    """Commands that ask before changing something refuse to guess when nobody can answer."""
    if not yes and not interactive():
        raise UsageError("no terminal to confirm on; pass --yes")


def new_table(*columns: str, title: str | None = None) -> Table:
    """The one table style of mims: a title, a header rule, no frame (copies cleanly into mails)."""
    return Table(*columns, title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
