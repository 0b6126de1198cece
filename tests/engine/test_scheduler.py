"""The scheduler's rules without a cluster: dependency order, parallel independent stacks, no new
stack after a failure, one DeployError (exit code 7) naming the failure and what did not run."""

from __future__ import annotations

import threading

import pytest

from mims.engine.scheduler import StackFailed, StackOutcome, run_in_order
from mims.errors import DeployError

# foundation -> (iam, broker) -> gateway; iam and broker are independent.
WAITS = {"foundation": set(), "iam": {"foundation"}, "broker": {"foundation"}, "gateway": {"iam"}}


class Recorder:
    def __init__(self):
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def _add(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def stack_started(self, stack: str) -> None:
        self._add(f"start {stack}")

    def stack_finished(self, outcome: StackOutcome) -> None:
        self._add(f"done {outcome.name}")

    def stack_failed(self, stack: str, text: str) -> None:
        self._add(f"failed {stack}: {text}")


def test_a_stack_starts_only_after_what_it_waits_for_succeeded():
    events = Recorder()
    outcomes = run_in_order(WAITS, lambda name: StackOutcome(name, {"create": 1}), events)
    assert [o.name for o in outcomes] == list(WAITS)
    position = {line: i for i, line in enumerate(events.lines)}
    for stack, deps in WAITS.items():
        for dep in deps:
            assert position[f"done {dep}"] < position[f"start {stack}"]


def test_independent_stacks_run_at_the_same_time():
    both_running = threading.Barrier(2, timeout=10)

    def action(name: str) -> StackOutcome:
        if name in ("iam", "broker"):
            both_running.wait()  # times out (BrokenBarrierError) if they ran one after the other
        return StackOutcome(name)

    run_in_order(WAITS, action, Recorder())


def test_after_a_failure_nothing_new_starts_and_running_stacks_finish():
    broker_may_finish = threading.Event()
    events = Recorder()

    def action(name: str) -> StackOutcome:
        if name == "iam":
            raise StackFailed("Deployment keycloak: timed out")
        if name == "broker":
            broker_may_finish.wait(10)
        return StackOutcome(name)

    def release_broker_after_iam_failed(stack: str, text: str) -> None:
        Recorder.stack_failed(events, stack, text)
        broker_may_finish.set()

    events.stack_failed = release_broker_after_iam_failed

    with pytest.raises(DeployError) as raised:
        run_in_order(WAITS, action, events)
    assert "done broker" in events.lines  # the running stack finished
    assert "start gateway" not in events.lines  # nothing started after the failure
    message = str(raised.value)
    assert "stack `iam`: Deployment keycloak: timed out" in message
    assert "not run: gateway" in message
    assert raised.value.exit_code == 7


def test_a_failed_stack_makes_mims_up_exit_7_with_the_not_run_list(cli, monkeypatch, write_blueprint):
    class FailingEngine:
        stack_name = "alderbrook-prod"

        def plan(self, refresh=False):
            return []

        def up(self, refresh=False):
            def action(name: str) -> StackOutcome:
                if name == "foundation":
                    raise StackFailed("Namespace alderbrook-iam: forbidden")
                return StackOutcome(name)

            return run_in_order(WAITS, action, Recorder())

    class FakeDeployment:
        engine = FailingEngine()

        def protect_data(self, **options):
            pass

    monkeypatch.setattr("mims.engine.deployment.open_deployment", lambda *args, **kwargs: FakeDeployment())
    code, out, err = cli("up", write_blueprint({}), "--yes")
    assert code == 7
    assert "stack `foundation`: Namespace alderbrook-iam: forbidden" in err
    assert "not run: iam, broker, gateway" in err
    assert out == ""
