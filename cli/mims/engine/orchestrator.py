"""Runs a rendered blueprint's stacks through Pulumi: in dependency order, independent stacks in
parallel, generated secrets created once and handed to the programs as Pulumi secrets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulumi.automation as auto

from mims.charts.footprint import BACKUPS_LABEL
from mims.charts.render import Rendering
from mims.engine.locks import clear_stale_lock, locked
from mims.engine.presence import ObjectRef, missing_objects, object_ref
from mims.engine.program import StackProgram, Target, data_namespaces, resource_name, secret_ref, secrets_program
from mims.engine.progress import Reporter, StackListener
from mims.engine.scheduler import StackFailed, StackOutcome, run_in_order
from mims.engine.workspace import Backend, Workspaces
from mims.errors import DeployError
from mims.progress import Progress
from mims.secrets import SecretValues, is_generated

SECRETS_PROJECT = "mims-secrets"
SECRETS_STEP = "secrets"  # the step of `up` that stores new generated values
PURGE_TIMEOUT = 600.0


@dataclass
class StackState:
    """A stack as `mims status` shows it."""

    name: str
    exists: bool
    last_update: str | None = None
    result: str | None = None
    resources: int = 0


class Engine:
    def __init__(
        self,
        rendering: Rendering,
        target: Target,
        *,
        backend: Backend | None = None,
        reporter: Reporter | None = None,
        workspaces: Workspaces | None = None,
    ):
        self.rendering = rendering
        self.target = target
        self.reporter = reporter or Reporter()
        self.workspaces = workspaces or Workspaces(backend or Backend.default(), self.reporter)
        bp = rendering.loaded.blueprint
        self.stack_name = f"{bp.city.name}-{bp.environment}"
        self.layers = {s.layer.name: s for s in rendering.layers}
        self.retained_namespaces = data_namespaces(rendering.objects())

    # -- the four operations -------------------------------------------------------------------

    def plan(self, refresh: bool = False) -> list[StackOutcome]:
        """`refresh` compares every object with the cluster first (`mims plan --refresh`); without
        it only the stacks whose inputs changed or whose objects are gone are previewed."""
        with _state_errors():
            stacks, _ = self._select_all(refresh)
            return self._run(self._order(), lambda name: self._preview(stacks[name]))

    def up(self, refresh: bool = False) -> list[StackOutcome]:
        """New generated values are stored (the secrets stack's update) before any stack holding
        them runs; the other stacks need not wait for that. `refresh` as for `plan`: what changed
        by hand is put back."""
        with _state_errors():
            stacks, secrets = self._select_all(refresh)
            waits = self._order()
            if secrets.fresh:
                for name, layer in self.layers.items():
                    if any(is_generated(obj) for obj in layer.objects):
                        waits[name].add(SECRETS_STEP)
                waits = {SECRETS_STEP: set(), **waits}

            def step(name: str) -> StackOutcome:
                return secrets.store() if name == SECRETS_STEP else self._update(stacks[name])

            return [o for o in self._run(waits, step) if o.name != SECRETS_STEP]

    def destroy(self, purge_data: bool, purge_backups: bool = False) -> tuple[list[StackOutcome], list[str]]:
        """Every stack destroyed, the namespaces holding volume claims and the backup volumes
        retained. With `purge_data` those namespaces are deleted afterwards (all but their backup
        volumes, unless `purge_backups`), also the ones an earlier `destroy` or a component switched
        off left behind (no stack holds them any more), and then the generated secrets. Returns the
        outcomes and the namespaces kept for their backups."""
        with _state_errors():
            outcomes = self._run(self._order(reverse=True), self._destroy)
            kept: list[str] = []
            if purge_data:
                city = self.rendering.loaded.blueprint.city.name
                kept = purge_namespaces(self.target, city, self.reporter, keep_backups=not purge_backups)
                stack = self.workspaces.existing_stack(SECRETS_PROJECT, self.stack_name, secrets_program({}))
                if stack is not None:
                    stack.destroy(show_secrets=False)
                    stack.workspace.remove_stack(self.stack_name)
            return outcomes, kept

    def states(self) -> list[StackState]:
        """Every stack's last operation and object count, read from the state (all stacks at once:
        each read is a `pulumi` process)."""

        def state(name: str) -> StackState:
            stack = self.workspaces.existing_stack(project(name), self.stack_name, self._program(name, {}))
            if stack is None:
                return StackState(name, exists=False)
            info = stack.info(show_secrets=False)
            resources = [
                r
                for r in (stack.export_stack().deployment or {}).get("resources", [])
                if r["type"].startswith("kubernetes:")
            ]
            ended = info.end_time.isoformat(timespec="seconds") if info and info.end_time else None
            return StackState(name, True, ended, info.result if info else None, len(resources))

        with _state_errors(), ThreadPoolExecutor(max_workers=len(self.layers)) as pool:
            return list(pool.map(state, self._order()))

    # -- one stack -----------------------------------------------------------------------------

    def _select_all(self, refresh: bool) -> tuple[dict[str, Selection], StoredSecrets]:
        """Every stack selected (or created) and checked against its last update, all at once and
        while the generated values are read and the cluster is asked which objects are gone: on an
        unchanged blueprint and platform this is all `plan` and `up` do. The values (new ones only
        in memory) go into each stack's program."""
        with ThreadPoolExecutor(max_workers=2) as reader:
            secrets = reader.submit(self._read_secrets)
            gone = reader.submit(self._missing) if not refresh else None

            def select(name: str) -> Selection:
                placeholder = self._program(name, {})
                if not self.layers[name].objects:  # an empty layer has work only if it ran before
                    stack, new = self.workspaces.existing_stack(project(name), self.stack_name, placeholder), False
                    if stack is None:
                        return Selection(name, None)
                else:
                    stack, new = self.workspaces.open_stack(project(name), self.stack_name, placeholder)
                stack.workspace.program = self._program(name, secrets.result().values)
                if new:
                    return Selection(name, stack, run=True)
                up_to_date = _up_to_date(stack)
                missing = self._gone(name, stack, gone.result(), up_to_date) if gone else []
                if missing:
                    self.reporter.say(
                        f"{name}: {_count(len(missing), 'object')} gone from the cluster "
                        f"({', '.join(map(str, missing[:3]))}{', ...' if len(missing) > 3 else ''}): refreshing",
                        style="yellow",
                    )
                run = refresh or bool(missing) or not up_to_date
                return Selection(name, stack, run=run, refresh=refresh or bool(missing))

            with ThreadPoolExecutor(max_workers=len(self.layers)) as pool:
                selected = {selection.name: selection for selection in pool.map(select, self.layers)}
            return selected, secrets.result()

    def _gone(self, name: str, stack: auto.Stack, missing: set[ObjectRef], up_to_date: bool) -> list[ObjectRef]:
        """The stack's objects that its state holds but the cluster does not. For an up-to-date
        stack every rendered object is in the state; otherwise the state is read (an object the
        blueprint just added is missing too, but not gone)."""
        objects = {object_ref(o): o for o in self.layers[name].objects}
        candidates = missing & objects.keys()
        if candidates and not up_to_date:
            deployed = {
                r["urn"].rsplit("::", 1)[-1] for r in (stack.export_stack().deployment or {}).get("resources", [])
            }
            candidates = {ref for ref in candidates if resource_name(objects[ref]) in deployed}
        return sorted(candidates)

    def _names(self, name: str) -> dict[str, str]:
        """Resource name -> the object as people name it, for the layer's objects."""
        return {resource_name(o): str(object_ref(o)) for o in self.layers[name].objects}

    def _missing(self) -> set[ObjectRef]:
        """The rendered objects the cluster does not have (`mims.engine.presence`)."""
        from kubernetes import config

        api = config.new_client_from_config(
            config_file=str(self.target.kubeconfig), context=self.target.context, persist_config=False
        )
        with api:
            return missing_objects(api, self.rendering.objects())

    def _preview(self, selected: Selection) -> StackOutcome:
        name, stack = selected.name, selected.stack
        if not selected.run or stack is None:  # no stack: an empty layer that never ran (`_select_all`)
            return StackOutcome(name, {"same": len(self.layers[name].objects)})
        listener = self.reporter.listener(name, planning=True, names=self._names(name))
        _engine(listener, stack.preview, on_event=listener, refresh=selected.refresh)
        return listener.outcome()

    def _update(self, selected: Selection) -> StackOutcome:
        name, stack = selected.name, selected.stack
        if not selected.run or stack is None:
            return StackOutcome(name, {"same": len(self.layers[name].objects)})
        _recover(stack, self.reporter)
        listener = self.reporter.listener(name, names=self._names(name))
        _engine(
            listener,
            stack.up,
            on_event=listener,
            refresh=selected.refresh,
            message=_program_of(stack).fingerprint(),
            show_secrets=False,
            suppress_outputs=True,
        )
        return listener.outcome()

    def _destroy(self, name: str) -> StackOutcome:
        """Deletes a stack's objects but the namespaces that hold volume claims (`retain_on_delete`
        in the state), and then the stack."""
        stack = self.workspaces.existing_stack(project(name), self.stack_name, self._program(name, {}))
        if stack is None:
            return StackOutcome(name)
        _recover(stack, self.reporter)
        listener = self.reporter.listener(name)
        _engine(listener, stack.destroy, on_event=listener, show_secrets=False, suppress_outputs=True)
        stack.workspace.remove_stack(self.stack_name)
        return listener.outcome()

    def _program(self, name: str, values: SecretValues | dict) -> StackProgram:
        objects = self.layers[name].objects
        secret_values = {}
        if isinstance(values, SecretValues):
            secret_values = {secret_ref(o): values.fill(o)[0] for o in objects if is_generated(o)}
        return StackProgram(objects, self.target, secret_values, self.retained_namespaces)

    # -- generated secrets ---------------------------------------------------------------------

    def _read_secrets(self) -> StoredSecrets:
        """The stored values plus any the rendering needs that are new (generated in memory)."""
        stack = self.workspaces.stack(SECRETS_PROJECT, self.stack_name, secrets_program({}))
        outputs = stack.outputs()
        values = SecretValues.from_dict(outputs["values"].value if "values" in outputs else None)
        fresh = False
        for obj in self.rendering.objects():
            if is_generated(obj):
                fresh |= values.fill(obj)[1]
        return StoredSecrets(stack, values, fresh, self.reporter)

    # -- ordering ------------------------------------------------------------------------------

    def _order(self, reverse: bool = False) -> dict[str, set[str]]:
        """Stack -> the stacks it waits for (its dependencies, or for destroy its dependents)."""
        waits = {name: set(s.layer.depends_on) for name, s in self.layers.items()}
        if reverse:
            waits = {name: {other for other, deps in waits.items() if name in deps} for name in waits}
        return waits

    def _run(self, waits: dict[str, set[str]], action: Callable[[str], StackOutcome]) -> list[StackOutcome]:
        """The scheduler's order and stop rule (mims.engine.scheduler); a `pulumi` command failing in
        a stack's action counts as that stack's failure."""

        def guarded(name: str) -> StackOutcome:
            try:
                return action(name)
            except auto.errors.CommandError as exc:
                raise StackFailed(_last_error_line(exc)) from None

        return run_in_order(waits, guarded, self.reporter)


@dataclass
class Selection:
    """One stack as `_select_all` found it: `run` when the engine has work (inputs changed, objects
    gone, or asked to refresh), `refresh` when it first compares the state with the cluster."""

    name: str
    stack: auto.Stack | None
    run: bool = False
    refresh: bool = False


@dataclass
class StoredSecrets:
    """The secrets stack and the values for this rendering; `fresh` when some are not stored yet."""

    stack: auto.Stack
    values: SecretValues
    fresh: bool
    progress: Progress

    def store(self) -> StackOutcome:
        _recover(self.stack, self.progress)
        self.stack.up(program=secrets_program(self.values.as_dict()), show_secrets=False, suppress_outputs=True)
        return StackOutcome(SECRETS_STEP)


def project(stack: str) -> str:
    return f"mims-{stack}"


@contextmanager
def _state_errors() -> Iterator[None]:
    """A `pulumi` command failing outside a stack's own run (selecting the stacks, reading the
    generated values or the state) is reported like a failed stack, not as a traceback."""
    try:
        yield
    except auto.errors.CommandError as exc:
        raise DeployError(
            f"Pulumi could not read or write the state: {_last_error_line(exc).removeprefix('error: ')}"
        ) from None


def _engine(listener: StackListener, operation: Callable, **kwargs) -> None:
    try:
        operation(**kwargs)
    except auto.errors.CommandError as exc:
        raise StackFailed(listener.failure(_last_error_line(exc))) from None


def _up_to_date(stack: auto.Stack) -> bool:
    """The last update succeeded with exactly this program's inputs: skip the engine run (seconds
    per stack) and report every object unchanged. Not while the stack is locked: a run killed
    half-way writes no history, so the last entry can match although the state holds its partial
    changes and pending operations (`_recover` then repairs the stack before the update). A stack
    that never ran and has no objects (add-ons nobody asked for) has nothing to do either."""
    program = _program_of(stack)
    if locked(stack):
        return False
    history = stack.history(page_size=1, show_secrets=False)
    if not history:
        return not program.objects
    return (
        history[0].kind == "update" and history[0].result == "succeeded" and history[0].message == program.fingerprint()
    )


def _program_of(stack: auto.Stack) -> StackProgram:
    """The program `_select_all` gave a component stack's workspace."""
    program = stack.workspace.program
    assert isinstance(program, StackProgram)
    return program


def _recover(stack: auto.Stack, progress: Progress) -> None:
    """Makes an interrupted run's stack usable again: a lock left by a dead process is removed and
    pending operations are reconciled with the cluster."""
    clear_stale_lock(stack, progress)
    deployment = stack.export_stack().deployment or {}
    if deployment.get("pending_operations"):
        stack.refresh(clear_pending_creates=True, show_secrets=False, suppress_outputs=True)


def purge_namespaces(
    target: Target, city: str, progress: Progress, keep_backups: bool, timeout: float = PURGE_TIMEOUT
) -> list[str]:
    """Deletes the namespaces mims created for `city` that are still on the cluster once every stack
    is destroyed: the ones retained because they hold volume claims. With `keep_backups`, a
    namespace holding a backup volume (label mims.io/backups) stays with that volume alone, so a
    restore after the purge has its dumps. Returns when the deleted namespaces, claims and the
    volumes the cluster deletes with them (reclaim policy Delete) are gone; returns the namespaces
    kept for their backups."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    selector = f"app.kubernetes.io/managed-by=mims,mims.io/city={city}"
    try:
        core = client.CoreV1Api(
            config.new_client_from_config(
                config_file=str(target.kubeconfig), context=target.context, persist_config=False
            )
        )
        claims = {
            _name(ns): core.list_namespaced_persistent_volume_claim(_name(ns)).items
            for ns in core.list_namespace(label_selector=selector).items
        }
        kept = sorted(ns for ns, found in claims.items() if keep_backups and any(map(_holds_backups, found)))
        doomed = [(ns, c) for ns, found in claims.items() for c in found if ns not in kept or not _holds_backups(c)]
        volumes = {c.spec.volume_name for _, c in doomed if c.spec and c.spec.volume_name}
        for name in claims:
            try:
                if name in kept:
                    progress.say(f"deleting the data volume claims of namespace {name}, keeping its backups")
                    for ns, claim in doomed:
                        if ns == name:
                            core.delete_namespaced_persistent_volume_claim(_name(claim), ns)
                else:
                    progress.say(f"deleting namespace {name} with its volume claims")
                    core.delete_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        deadline = time.monotonic() + timeout
        while True:
            left = [_name(ns) for ns in core.list_namespace(label_selector=selector).items if _name(ns) not in kept]
            left += [
                f"{ns}/{_name(c)}"
                for ns in kept
                for c in core.list_namespaced_persistent_volume_claim(ns).items
                if not _holds_backups(c)
            ]
            left += [
                _name(pv)
                for pv in core.list_persistent_volume().items
                if _name(pv) in volumes and pv.spec and pv.spec.persistent_volume_reclaim_policy == "Delete"
            ]
            if not left:
                return kept
            if time.monotonic() > deadline:
                raise DeployError(
                    f"still there {timeout:.0f} s after deleting them: {', '.join(left)}; "
                    "look at their finalizers and run the command again"
                )
            time.sleep(1)
    except (ApiException, HTTPError, ConfigException, OSError) as exc:
        reason = f"HTTP {exc.status}: {exc.reason}" if isinstance(exc, ApiException) else str(exc)
        raise DeployError(
            f"deleting the namespaces that hold the volume claims failed ({reason}); run the command again"
        ) from None


def _holds_backups(claim: Any) -> bool:
    return ((claim.metadata and claim.metadata.labels) or {}).get(BACKUPS_LABEL) == "true"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _last_error_line(exc: auto.errors.CommandError) -> str:
    """For failures before any resource ran (a locked stack, a broken backend): the engine's last
    `error:` line."""
    lines = [line[line.index("error:") :].strip() for line in str(exc).splitlines() if "error:" in line]
    return lines[-1] if lines else str(exc).strip().splitlines()[-1]


def _name(obj: Any) -> str:
    """An object's name as the API server returns it (always set there; the client's models make
    every field optional)."""
    assert obj.metadata and obj.metadata.name
    return obj.metadata.name
