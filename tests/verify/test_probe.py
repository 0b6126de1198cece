"""Running probes: a failure, a skip, an error of the network or of the probe itself each become one
result; a probe that needs an earlier one is skipped with the reason when that one did not pass."""

from __future__ import annotations

from mims.verify.probe import Probe, ProbeFailed, ProbeSkipped, run_probes
from mims.verify.report import Status


def raising(error: Exception):
    def check() -> None:
        raise error

    return check


def run(*probes: Probe) -> dict:
    return {r.probe: r for r in run_probes(probes)}


def test_each_outcome_becomes_one_result_with_its_message():
    results = run(
        Probe("MIM2", "c", "passes", lambda: None),
        Probe("MIM2", "c", "fails", raising(ProbeFailed("expected 401, got 200"))),
        Probe("MIM2", "c", "skips", raising(ProbeSkipped("replicas: 0"))),
        Probe("MIM2", "c", "refused", raising(ConnectionRefusedError(111, "Connection refused"))),
        Probe("MIM2", "c", "buggy", raising(KeyError("id"))),
    )
    assert {n: (r.status, r.message) for n, r in results.items()} == {
        "passes": (Status.PASS, ""),
        "fails": (Status.FAIL, "expected 401, got 200"),
        "skips": (Status.SKIP, "replicas: 0"),
        "refused": (Status.FAIL, "ConnectionRefusedError: [Errno 111] Connection refused"),
        "buggy": (Status.FAIL, "unexpected KeyError: 'id'"),
    }


def test_a_probe_after_a_failed_one_it_needs_is_skipped_and_says_so():
    results = run(
        Probe("MIM1", "broker", "create", raising(ProbeFailed("HTTP 500"))),
        Probe("MIM1", "broker", "retrieve", lambda: None, needs=("create",)),
    )
    assert results["retrieve"].status is Status.SKIP
    assert results["retrieve"].message == "needs `create`, which failed"


def test_a_probe_after_a_skipped_one_it_needs_is_skipped_for_the_same_reason():
    results = run(
        Probe("MIM1", "broker", "create", raising(ProbeSkipped("no pod of broker/scorpio"))),
        Probe("MIM1", "broker", "retrieve", lambda: None, needs=("create",)),
    )
    assert (results["retrieve"].status, results["retrieve"].message) == (Status.SKIP, "no pod of broker/scorpio")
