"""Progress while stacks run, on top of `mims.progress`: one line per stack start and end, one per
changed resource."""

from __future__ import annotations

from collections import Counter

from pulumi.automation import events

from mims.engine.scheduler import StackOutcome
from mims.progress import Lines, Progress

# The engine steps mims counts; a replacement also emits create-replacement and delete-replaced
# steps, which are part of its one `replace`.
_COUNTED = ("create", "update", "replace", "delete", "same")
_DONE = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
_STYLE = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


class Reporter:
    """The engine's progress: a `Progress` itself, with the stack lines on top (stacks run in parallel,
    so `progress` must be thread-safe, as `Lines` is)."""

    def __init__(self, progress: Progress | None = None):
        self.progress = progress or Lines()

    def say(self, text: str, style: str | None = None) -> None:
        self.progress.say(text, style)

    def stack_started(self, stack: str) -> None:
        self.say(f"{stack}: started")

    def stack_finished(self, outcome) -> None:
        changes = ", ".join(f"{n} {k}" for k, n in sorted(outcome.changes.items()) if n and k != "same")
        self.say(f"{outcome.name}: done in {outcome.seconds:.1f} s ({changes or 'no changes'})")

    def stack_failed(self, stack: str, text: str) -> None:
        self.say(f"{stack}: failed: {text}", style="red")

    def listener(self, stack: str, planning: bool = False, names: dict[str, str] | None = None) -> StackListener:
        return StackListener(self, stack, planning, names or {})


class StackListener:
    """Receives one stack's engine events: prints each change, counts the Kubernetes objects per
    operation (the engine's own summary also counts its stack and provider) and keeps error lines."""

    def __init__(self, reporter: Reporter, stack: str, planning: bool, names: dict[str, str]):
        self.reporter = reporter
        self.stack = stack
        self.planning = planning
        self.names = names  # resource name -> "Kind namespace/name"
        self.counts: Counter[str] = Counter()
        self.drift: dict[str, str] = {}
        self.changed: dict[str, str] = {}
        self.errors: list[str] = []

    def __call__(self, event: events.EngineEvent) -> None:
        refreshed = event.res_outputs_event.metadata if event.res_outputs_event else None
        if refreshed and refreshed.op.value == "refresh" and refreshed.type.startswith("kubernetes:"):
            self._refreshed(refreshed)
        step = None
        if self.planning and event.resource_pre_event:
            step = event.resource_pre_event.metadata
        elif not self.planning and event.res_outputs_event:
            step = event.res_outputs_event.metadata
        if step is not None and step.op.value in _COUNTED and step.type.startswith("kubernetes:"):
            op = step.op.value
            self.counts[op] += 1
            if op != "same":
                name = step.urn.rsplit("::", 1)[-1]
                self.changed[self.names.get(name, name)] = op
                verb = ("will " + op) if self.planning else _DONE[op]
                self.reporter.say(
                    f"{self.stack}: {verb} {step.type.rsplit(':', 1)[-1]} {step.urn.rsplit('::', 1)[-1]}",
                    style=_STYLE.get(op),
                )
        diagnostic = event.diagnostic_event
        if diagnostic and diagnostic.severity == "error" and diagnostic.urn:
            name = diagnostic.urn.rsplit("::", 1)[-1]
            message = " ".join(diagnostic.message.split())
            if not diagnostic.urn.split("::")[-2].startswith("pulumi:pulumi:Stack"):
                self.errors.append(f"{name}: {message}")

    def _refreshed(self, step: events.StepEventMetadata) -> None:
        """A refresh step read the object from the cluster: gone (no new state), or different from
        what the program declares (a detailed diff against the inputs)."""
        name = step.urn.rsplit("::", 1)[-1]
        what = "deleted" if step.new is None else "changed" if step.detailed_diff else None
        if what:
            shown = self.names.get(name, name)
            self.drift[shown] = what
            fields = ", ".join(sorted(step.detailed_diff or {}))
            self.reporter.say(f"{self.stack}: {shown} was {what} by hand{f' ({fields})' if fields else ''}", "yellow")

    def outcome(self) -> StackOutcome:
        return StackOutcome(
            self.stack,
            dict(self.counts),
            drift=dict(sorted(self.drift.items())),
            objects=dict(sorted(self.changed.items())),
        )

    def failure(self, fallback: str) -> str:
        return "\n  ".join(dict.fromkeys(self.errors)) or fallback
