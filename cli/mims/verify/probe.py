"""A probe is one named check with a clear failure message. Probes of a family run in order; a probe
that builds on an earlier one (retrieve after create) names it in `needs` and is skipped, with the
reason, when that one did not pass."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mims.verify.report import Result, Status


class ProbeFailed(Exception):
    """The platform does not do what the probe checks; the message says what was expected and seen."""


class ProbeSkipped(Exception):
    """The probe does not apply to this blueprint or platform; the message says why."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise ProbeFailed(message)


@dataclass(frozen=True)
class Probe:
    mim: str
    component: str
    name: str
    check: Callable[[], None]
    needs: tuple[str, ...] = ()


def run_probes(probes: Iterable[Probe], on_result: Callable[[Result], None] = lambda r: None) -> list[Result]:
    results: list[Result] = []
    done: dict[str, Result] = {}
    for probe in probes:
        unmet = [
            done.get(n, Result(probe.mim, probe.component, n, Status.SKIP, f"needs `{n}`, which did not run"))
            for n in probe.needs
            if n not in done or done[n].status is not Status.PASS
        ]
        if unmet and unmet[0].status is Status.SKIP:  # the same reason (`replicas: 0`), not a chain of them
            result = Result(probe.mim, probe.component, probe.name, Status.SKIP, unmet[0].message)
        elif unmet:
            result = Result(
                probe.mim, probe.component, probe.name, Status.SKIP, f"needs `{unmet[0].probe}`, which failed"
            )
        else:
            result = _run(probe)
        done[probe.name] = result
        results.append(result)
        on_result(result)
    return results


def _run(probe: Probe) -> Result:
    started = time.perf_counter()
    try:
        probe.check()
        status, message = Status.PASS, ""
    except ProbeFailed as failed:
        status, message = Status.FAIL, str(failed)
    except ProbeSkipped as skipped:
        status, message = Status.SKIP, str(skipped)
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, TLS, reset
        status, message = Status.FAIL, f"{type(error).__name__}: {error}"
    except Exception as error:  # a probe's own bug or an unexpected answer: reported, not fatal to the run
        status, message = Status.FAIL, f"unexpected {type(error).__name__}: {error}"
    return Result(probe.mim, probe.component, probe.name, status, message, round(time.perf_counter() - started, 3))
