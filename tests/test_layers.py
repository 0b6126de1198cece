"""Layer definitions: every component in one layer, dependencies known and acyclic."""

from __future__ import annotations

import pytest

from mims import paths
from mims.charts.meta import load_charts
from mims.errors import ChartError
from mims.layers import load_layers
from tests.conftest import FIXTURES


def test_shipped_layers_are_ordered_by_dependency():
    layers = load_layers(paths.layers_dir())
    seen: set[str] = set()
    for layer in layers:
        assert set(layer.depends_on) <= seen, layer.name
        seen.add(layer.name)
    assert layers[0].name == "foundation"


def test_every_chart_component_has_a_layer():
    owned = {c for s in load_layers(paths.layers_dir()) for c in s.components}
    assert {component for component, _ in load_charts(paths.charts_dir())} <= owned


def test_cycle_is_reported():
    with pytest.raises(ChartError, match="cycle: a, b"):
        load_layers(FIXTURES / "layers" / "cycle")


def test_unknown_dependency_is_reported():
    with pytest.raises(ChartError, match="depends_on names unknown layer `missing`"):
        load_layers(FIXTURES / "layers" / "unknown-dep")
