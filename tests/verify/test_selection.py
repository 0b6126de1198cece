"""`--only`: the probes of the chosen MIMs, and the probes of other MIMs they build on."""

from __future__ import annotations

from mims.verify import selected
from mims.verify.probe import Probe


def probe(mim: str, name: str, needs: tuple[str, ...] = ()) -> Probe:
    return Probe(mim, "broker", name, lambda: None, needs)


def test_only_keeps_the_chosen_mims_and_what_they_need_in_order():
    probes = [
        probe("MIM1", "create"),
        probe("MIM1", "retrieve", ("create",)),
        probe("MIM2", "expands terms", ("create",)),
        probe("MIM6", "401"),
    ]
    assert [p.name for p in selected(probes, {"MIM2"})] == ["create", "expands terms"]
    assert [p.name for p in selected(probes, {"MIM6"})] == ["401"]
