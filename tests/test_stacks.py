"""Stack definitions: every component in one stack, dependencies known and acyclic."""

from __future__ import annotations

import pytest

from mims import paths
from mims.charts.meta import load_charts
from mims.errors import ChartError
from mims.stacks import load_stacks
from tests.conftest import FIXTURES


def test_shipped_stacks_are_ordered_by_dependency():
    stacks = load_stacks(paths.stacks_dir())
    seen: set[str] = set()
    for stack in stacks:
        assert set(stack.depends_on) <= seen, stack.name
        seen.add(stack.name)
    assert stacks[0].name == "foundation"


def test_every_chart_component_has_a_stack():
    owned = {c for s in load_stacks(paths.stacks_dir()) for c in s.components}
    assert {component for component, _ in load_charts(paths.charts_dir())} <= owned


def test_cycle_is_reported():
    with pytest.raises(ChartError, match="cycle: a, b"):
        load_stacks(FIXTURES / "stacks" / "cycle")


def test_unknown_dependency_is_reported():
    with pytest.raises(ChartError, match="depends_on names unknown stack `missing`"):
        load_stacks(FIXTURES / "stacks" / "unknown-dep")
