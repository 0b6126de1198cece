"""How mims says what it is doing: one `Progress` that the engine, the clusters, the toolchain and the
commands all take, so `--quiet` silences every progress line in one place. Problems (errors, warnings)
are not progress: they always go to stderr."""

from __future__ import annotations

import threading
from typing import Protocol

from mims.console import err


class Progress(Protocol):
    def say(self, text: str, style: str | None = None) -> None:
        """One line about what is happening now; `style` is a rich style for a terminal."""


class Lines:
    """Progress as plain lines on stderr (not a live display, so CI logs read like a terminal);
    thread-safe because stacks run in parallel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def say(self, text: str, style: str | None = None) -> None:
        with self._lock:
            err.print(text, style=style, markup=False, highlight=False)


class Silent:
    """Progress nobody reads: `--quiet`, and callers that pass none."""

    def say(self, text: str, style: str | None = None) -> None:
        pass


class Prefixed:
    """Another progress's lines, each starting with `prefix: ` (a tool or a stage of a bigger job)."""

    def __init__(self, progress: Progress, prefix: str) -> None:
        self.progress = progress
        self.prefix = prefix

    def say(self, text: str, style: str | None = None) -> None:
        self.progress.say(f"{self.prefix}: {text}", style)


SILENT = Silent()


def progress_lines(quiet: bool) -> Progress:
    """What a command reports its progress through: lines on stderr, or nothing with `--quiet`."""
    return SILENT if quiet else Lines()
