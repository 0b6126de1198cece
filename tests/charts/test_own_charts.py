"""Charts of a city's own, outside the package: `charts.paths` in the blueprint and MIMS_CHARTS_PATH."""

from __future__ import annotations

import shutil

import pytest

from mims.blueprint import load_blueprint
from mims.errors import ChartError, InvalidInput
from tests.conftest import FIXTURES, find

OWN = FIXTURES / "own-charts"
TINY = {"charts": {"paths": ["own"]}, "components": {"broker": {"implementation": "tiny"}}}


@pytest.fixture
def own_charts(write_blueprint):
    """The fixture charts copied to `own/` beside the blueprint."""
    folder = write_blueprint("version: 1\n").parent / "own"
    shutil.copytree(OWN, folder)
    return folder


def test_an_own_chart_named_in_the_blueprint_renders(write_blueprint, renderer, own_charts):
    rendering = renderer.render(load_blueprint(write_blueprint(TINY)))
    assert rendering.charts["broker"].meta.implementation == "tiny"
    assert find(rendering, "Deployment", "api", "alderbrook-broker")


def test_a_misspelt_implementation_lists_the_available_ones(write_blueprint, own_charts):
    with pytest.raises(InvalidInput) as err:
        load_blueprint(write_blueprint({**TINY, "components": {"broker": {"implementation": "tinny"}}}))
    [problem] = err.value.problems
    assert problem.field == "components.broker.implementation" and problem.line is not None
    assert "available: `orion-ld`, `scorpio`, `tiny`; did you mean `tiny`?" in problem.message


def test_the_charts_path_variable_adds_a_folder(write_blueprint, renderer, monkeypatch):
    monkeypatch.setenv("MIMS_CHARTS_PATH", str(OWN))
    loaded = load_blueprint(write_blueprint({"components": {"broker": {"implementation": "tiny"}}}))
    assert renderer.render(loaded).charts["broker"].meta.name == "tiny-broker"


def test_a_second_chart_for_the_same_implementation_names_both(write_blueprint, tmp_path):
    for name in ("one", "two"):
        shutil.copytree(OWN / "tiny-broker", tmp_path / name / "tiny-broker")
    with pytest.raises(ChartError, match=r"one/tiny-broker/chart.yaml") as err:
        load_blueprint(write_blueprint({**TINY, "charts": {"paths": ["one", "two"]}}))
    assert "two/tiny-broker" in str(err.value)


def test_a_missing_charts_folder_is_located(write_blueprint):
    with pytest.raises(InvalidInput, match=r"charts.paths\[0\]: folder nowhere does not exist"):
        load_blueprint(write_blueprint({**TINY, "charts": {"paths": ["nowhere"]}}))
