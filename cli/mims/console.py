"""Where output goes: results (and `--json`) to stdout, progress and problems to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def interactive() -> bool:
    """Prompts only when a person is at a terminal."""
    return sys.stdin.isatty()


def new_table(*columns: str, title: str | None = None) -> Table:
    """The one table style of mims: a title, a header rule, no frame (copies cleanly into mails)."""
    return Table(*columns, title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
