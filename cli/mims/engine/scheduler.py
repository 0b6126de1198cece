"""The order stacks run in: each as soon as what it waits for has succeeded, independent ones in
parallel, no new one after a failure. Pure: no Pulumi, no cluster, so the rules are unit-tested."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from mims.errors import DeployError

CHANGE_KINDS = ("create", "update", "replace", "delete")


@dataclass
class StackOutcome:
    """What one stack did (or would do, for a preview)."""

    name: str
    changes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    # object ("Kind namespace/name") -> "changed" or "deleted": what a refresh found done by hand
    drift: dict[str, str] = field(default_factory=dict)
    # object -> its change (create, update, replace, delete), for the objects with one
    objects: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.changes.get(kind, 0) for kind in CHANGE_KINDS)


class StackFailed(Exception):
    """One stack's run failed; the message says why (the failing resources' errors)."""


class StackEvents(Protocol):
    def stack_started(self, stack: str) -> None: ...
    def stack_finished(self, outcome: StackOutcome) -> None: ...
    def stack_failed(self, stack: str, text: str) -> None: ...


def run_in_order(
    waits: dict[str, set[str]], action: Callable[[str], StackOutcome], events: StackEvents
) -> list[StackOutcome]:
    """Runs `action` per stack (the keys of `waits`, each waiting for its set) as soon as what it
    waits for succeeded; after a failure (StackFailed) starts nothing new but lets running stacks
    finish, then raises one DeployError naming every failure and the stacks that did not run.
    Returns the outcomes in the order of `waits`."""
    done: dict[str, StackOutcome] = {}
    failed: dict[str, str] = {}
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(waits))) as pool:
        while True:
            if not failed:
                for name, deps in waits.items():
                    if name not in done and name not in running.values() and deps <= done.keys():
                        events.stack_started(name)
                        running[pool.submit(_timed, action, name)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    outcome = future.result()
                except StackFailed as exc:
                    failed[name] = str(exc)
                    events.stack_failed(name, failed[name])
                    continue
                done[name] = outcome
                events.stack_finished(outcome)
    if failed:
        skipped = [n for n in waits if n not in done and n not in failed]
        lines = [f"stack `{n}`: {text}" for n, text in failed.items()]
        if skipped:
            lines.append(f"not run: {', '.join(skipped)}")
        raise DeployError("\n".join(lines) + "\nfix the cause and run the command again; it continues where it stopped")
    return [done[name] for name in waits]


def _timed(action: Callable[[str], StackOutcome], name: str) -> StackOutcome:
    start = time.monotonic()
    outcome = action(name)
    outcome.seconds = time.monotonic() - start
    return outcome
