"""Runs a rendered blueprint's stacks through Pulumi: in dependency order, independent stacks in
parallel, generated secrets created once and handed to the programs as Pulumi secrets."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pulumi.automation as auto

from mims.charts.render import Rendering
from mims.engine.locks import clear_stale_lock
from mims.engine.program import StackProgram, Target, data_namespaces, secret_ref, secrets_program
from mims.engine.progress import Reporter, StackListener
from mims.engine.workspace import Backend, Workspaces
from mims.errors import DeployError
from mims.secrets import ANNOTATION, SecretValues

SECRETS_PROJECT = "mims-secrets"
CHANGE_KINDS = ("create", "update", "replace", "delete")


@dataclass
class StackOutcome:
    """What one stack did (or would do, for a preview)."""

    name: str
    changes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def changed(self) -> int:
        return sum(self.changes.get(kind, 0) for kind in CHANGE_KINDS)


@dataclass
class StackState:
    """A stack as `mims status` shows it."""

    name: str
    exists: bool
    last_update: str | None = None
    result: str | None = None
    resources: int = 0


class Engine:
    def __init__(self, rendering: Rendering, target: Target, *, backend: Backend | None = None,
                 reporter: Reporter | None = None):
        self.rendering = rendering
        self.target = target
        self.reporter = reporter or Reporter()
        self.workspaces = Workspaces(backend or Backend.default(), say=self.reporter.say)
        bp = rendering.loaded.blueprint
        self.stack_name = f"{bp.city.name}-{bp.environment}"
        self.stacks = {s.stack.name: s for s in rendering.stacks}

    # -- the four operations -------------------------------------------------------------------

    def plan(self) -> list[StackOutcome]:
        stacks = self._select_all(self._secret_values(persist=False)[0])
        return self._run(self._order(), lambda name: self._preview(*stacks[name]))

    def up(self) -> list[StackOutcome]:
        stacks = self._select_all(self._secret_values(persist=True)[0])
        return self._run(self._order(), lambda name: self._update(*stacks[name]))

    def destroy(self, purge_data: bool) -> list[StackOutcome]:
        values = self._secret_values(persist=False)[0] if purge_data else None
        outcomes = self._run(self._order(reverse=True), lambda name: self._destroy(name, values))
        if purge_data:
            stack = self.workspaces.existing_stack(SECRETS_PROJECT, self.stack_name, secrets_program({}))
            if stack is not None:
                stack.destroy(show_secrets=False)
                stack.workspace.remove_stack(self.stack_name)
        return outcomes

    def states(self) -> list[StackState]:
        states = []
        for name in self._order():
            stack = self.workspaces.existing_stack(project(name), self.stack_name, self._program(name, {}))
            if stack is None:
                states.append(StackState(name, exists=False))
                continue
            info = stack.info()
            resources = [r for r in stack.export_stack().deployment.get("resources", [])
                         if r["type"].startswith("kubernetes:")]
            ended = info.end_time.isoformat(timespec="seconds") if info and info.end_time else None
            states.append(StackState(name, True, ended, info.result if info else None, len(resources)))
        return states

    # -- one stack -----------------------------------------------------------------------------

    def _select_all(self, values: SecretValues) -> dict[str, tuple[str, auto.Stack, bool]]:
        """Every stack selected (or created) and checked against its last update, all at once:
        on an unchanged blueprint this is all `plan` and `up` do."""
        def select(name: str) -> tuple[str, auto.Stack, bool]:
            stack = self.workspaces.stack(project(name), self.stack_name, self._program(name, values))
            return name, stack, _up_to_date(stack)
        with ThreadPoolExecutor(max_workers=len(self.stacks)) as pool:
            return {selected[0]: selected for selected in pool.map(select, self.stacks)}

    def _preview(self, name: str, stack: auto.Stack, up_to_date: bool) -> StackOutcome:
        if up_to_date:
            return StackOutcome(name, {"same": len(self.stacks[name].objects)})
        listener = self.reporter.listener(name, planning=True)
        _engine(listener, stack.preview, on_event=listener)
        return StackOutcome(name, dict(listener.counts))

    def _update(self, name: str, stack: auto.Stack, up_to_date: bool) -> StackOutcome:
        if up_to_date:
            return StackOutcome(name, {"same": len(self.stacks[name].objects)})
        _recover(stack)
        listener = self.reporter.listener(name)
        _engine(listener, stack.up, on_event=listener, message=stack.workspace.program.fingerprint(),
                show_secrets=False, suppress_outputs=True)
        return StackOutcome(name, dict(listener.counts))

    def _destroy(self, name: str, purge_values: SecretValues | None) -> StackOutcome:
        """Deletes a stack's objects; with `purge_values` (--purge-data) first lets the namespaces
        that hold volumes go too, so their volume claims are deleted with them."""
        stack = self.workspaces.existing_stack(project(name), self.stack_name, self._program(name, {}))
        if stack is None:
            return StackOutcome(name)
        _recover(stack)
        if purge_values is not None:
            stack.up(program=self._program(name, purge_values, purge=True), show_secrets=False,
                     suppress_outputs=True)
        listener = self.reporter.listener(name)
        _engine(listener, stack.destroy, on_event=listener, show_secrets=False, suppress_outputs=True)
        stack.workspace.remove_stack(self.stack_name)
        return StackOutcome(name, dict(listener.counts))

    def _program(self, name: str, values: SecretValues | dict, purge: bool = False) -> StackProgram:
        objects = self.stacks[name].objects
        secret_values = {}
        if isinstance(values, SecretValues):
            secret_values = {secret_ref(o): values.fill(o)[0] for o in objects
                             if o["kind"] == "Secret" and ANNOTATION in (o["metadata"].get("annotations") or {})}
        retained = set() if purge else data_namespaces(self.rendering.objects())
        return StackProgram(objects, self.target, secret_values, retained)

    # -- generated secrets ---------------------------------------------------------------------

    def _secret_values(self, persist: bool) -> tuple[SecretValues, bool]:
        """The stored values plus any the rendering needs that are new; stored first when `persist`,
        so a value never reaches a cluster before it is safe in the state."""
        stack = self.workspaces.stack(SECRETS_PROJECT, self.stack_name, secrets_program({}))
        outputs = stack.outputs()
        values = SecretValues.from_dict(outputs["values"].value if "values" in outputs else None)
        fresh = False
        for obj in self.rendering.objects():
            if obj["kind"] == "Secret" and ANNOTATION in (obj["metadata"].get("annotations") or {}):
                fresh |= values.fill(obj)[1]
        if fresh and persist:
            _recover(stack)
            stack.up(program=secrets_program(values.as_dict()), show_secrets=False, suppress_outputs=True)
        return values, fresh

    # -- ordering ------------------------------------------------------------------------------

    def _order(self, reverse: bool = False) -> dict[str, set[str]]:
        """Stack -> the stacks it waits for (its dependencies, or for destroy its dependents)."""
        waits = {name: set(s.stack.depends_on) for name, s in self.stacks.items()}
        if reverse:
            waits = {name: {other for other, deps in waits.items() if name in deps} for name in waits}
        return waits

    def _run(self, waits: dict[str, set[str]], action: Callable[[str], StackOutcome]) -> list[StackOutcome]:
        """Runs `action` per stack as soon as what it waits for succeeded; stops starting new stacks
        after a failure, lets running ones finish, and raises one DeployError naming every failure."""
        done: dict[str, StackOutcome] = {}
        failed: dict[str, str] = {}
        running: dict[Future, str] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(waits))) as pool:
            while True:
                if not failed:
                    for name, deps in waits.items():
                        if name not in done and name not in running.values() and deps <= done.keys():
                            self.reporter.stack_started(name)
                            running[pool.submit(_timed, action, name)] = name
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    try:
                        outcome = future.result()
                    except (StackFailed, auto.errors.CommandError) as exc:
                        failed[name] = str(exc) if isinstance(exc, StackFailed) else _last_error_line(exc)
                        self.reporter.stack_failed(name, failed[name])
                        continue
                    done[name] = outcome
                    self.reporter.stack_finished(outcome)
        if failed:
            skipped = [n for n in waits if n not in done and n not in failed]
            lines = [f"stack `{n}`: {text}" for n, text in failed.items()]
            if skipped:
                lines.append(f"not run: {', '.join(skipped)}")
            raise DeployError("\n".join(lines) + "\nfix the cause and run the command again; it continues "
                                                 "where it stopped")
        return [done[name] for name in waits]


def project(stack: str) -> str:
    return f"mims-{stack}"


def _timed(action: Callable[[str], StackOutcome], name: str) -> StackOutcome:
    start = time.monotonic()
    outcome = action(name)
    outcome.seconds = time.monotonic() - start
    return outcome


class StackFailed(Exception):
    """One stack's engine run failed; the message holds the failing resources' errors."""


def _engine(listener: StackListener, operation: Callable, **kwargs) -> None:
    try:
        operation(**kwargs)
    except auto.errors.CommandError as exc:
        raise StackFailed(listener.failure(_last_error_line(exc))) from None


def _up_to_date(stack: auto.Stack) -> bool:
    """The last update succeeded with exactly this program's inputs: skip the engine run (seconds
    per stack) and report every object unchanged."""
    program: StackProgram = stack.workspace.program
    history = stack.history(page_size=1)
    return bool(history) and history[0].kind == "update" and history[0].result == "succeeded" \
        and history[0].message == program.fingerprint()


def _recover(stack: auto.Stack) -> None:
    """Makes an interrupted run's stack usable again: a lock left by a dead process is removed and
    pending operations are reconciled with the cluster."""
    clear_stale_lock(stack)
    deployment = stack.export_stack().deployment or {}
    if deployment.get("pending_operations"):
        stack.refresh(clear_pending_creates=True, show_secrets=False, suppress_outputs=True)


def _last_error_line(exc: auto.errors.CommandError) -> str:
    """For failures before any resource ran (a locked stack, a broken backend): the engine's last
    `error:` line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("error:")]
    return lines[-1] if lines else str(exc).strip().splitlines()[-1]
