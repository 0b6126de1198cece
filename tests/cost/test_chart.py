"""The bar chart for a council's slide: SVG with no dependency, PNG through matplotlib."""

from __future__ import annotations

import importlib.util
import os
import sys
import xml.etree.ElementTree as ET

import pytest

from mims.cost.chart import compare_chart, single_chart, to_svg, write_chart
from mims.cost.model import estimate
from mims.errors import UsageError

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def small(rendered_examples):
    return estimate(rendered_examples["small-city"])


def test_svg_of_one_option_shows_first_year_and_horizon_against_the_cap(small):
    svg = to_svg(single_chart(small, "Alder & Brook"))
    root = ET.fromstring(svg)  # well-formed, names escaped
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Alder & Brook: MIMs platform cost on Hetzner Cloud (self-managed k3s)" in texts
    assert {"First year", "3 years", "EUR 39,620", "EUR 78,859", "first-year cap EUR 50,000"} <= set(texts)
    segments = [r.find(f"{SVG}title").text for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert "infrastructure: EUR 420" in segments and "staff set-up: EUR 20,000" in segments
    assert "extras" not in texts  # no legend entry for what nobody listed


def test_svg_comparison_has_a_bar_per_option(rendered_examples):
    results = [
        estimate(rendered_examples["small-city"], hosting=h)
        for h in ("hetzner", "ovh", "scaleway", "ionos", "aws", "on-premises")
    ]
    root = ET.fromstring(to_svg(compare_chart(results, "Alderbrook")))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for e in results:
        assert f"{e.sheet.name} ({e.node_count} x {e.node_type.name})" in texts
        assert f"EUR {e.first_year_total:,.0f}" in texts


def test_unknown_chart_formats_are_refused(small, tmp_path):
    with pytest.raises(UsageError, match=r"must end in \.svg or \.png"):
        write_chart(single_chart(small, "A"), tmp_path / "chart.pdf")


def test_png_through_matplotlib(small, tmp_path):
    if importlib.util.find_spec("matplotlib") is None:
        if os.environ.get("CI"):
            pytest.fail("matplotlib is not installed; scripts/test installs mims[cost-chart]")
        pytest.skip("matplotlib is not installed (pip install 'mims[cost-chart]')")
    target = tmp_path / "cost.png"
    write_chart(single_chart(small, "Alderbrook"), target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000


def test_png_without_matplotlib_says_how_to_get_it(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(UsageError, match=r"pip install 'mims\[cost-chart\]', or write an .svg chart"):
        write_chart(single_chart(small, "A"), tmp_path / "cost.png")
