"""One process at a time: an exclusive flock on a lock file, saying so when another process holds it
(the toolchain installs a tool once, a local cluster is created, stopped or deleted by one `mims`)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mims.progress import Progress


@contextmanager
def exclusive(path: Path, progress: Progress, waiting: str) -> Iterator[None]:
    """Holds the lock file `path` (made, with its folder, when missing); says `waiting` first when
    another process holds it, then waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.say(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
