"""Price sheets: shipped as data, every price dated and sourced, checked against the blueprint."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib

import pytest
import yaml

from mims import paths
from mims.blueprint import load_blueprint
from mims.cost.sheets import load_sheet, sheets_for, shipped_sheets
from mims.errors import ChartError, InvalidInput
from tests.conftest import REPO

OPTIONS = {"hetzner", "ovh", "scaleway", "ionos", "aws", "on-premises"}


def test_every_hosting_option_has_a_sheet():
    sheets = shipped_sheets()
    assert set(sheets) == OPTIONS
    assert {s.kind for s in sheets.values()} == {"eu-provider", "hyperscaler", "on-premises"}
    assert sheets["aws"].kind == "hyperscaler" and sheets["on-premises"].kind == "on-premises"


@pytest.mark.parametrize("sheet_id", sorted(OPTIONS))
def test_every_price_carries_currency_unit_date_and_source(sheet_id):
    raw = yaml.safe_load((paths.prices_dir() / f"{sheet_id}.yaml").read_text())
    prices = [raw[k] for k in ("control_plane", "load_balancer", "block_storage", "backup_storage", "egress")]
    prices += [n["price"] for n in raw["node_types"] if "price" in n]
    prices += list((raw.get("compute") or {}).values())
    for price in prices:  # written out in the file, not inherited
        assert {"amount", "currency", "unit", "date", "source"} <= set(price), price
        assert price["currency"] == "EUR" and isinstance(price["date"], dt.date) and price["source"].strip()
    sheet = shipped_sheets()[sheet_id]
    assert all(sheet.node_price(n) >= 0 for n in sheet.node_types)
    assert all(n.vcpu > 0 and n.memory_gib > 0 for n in sheet.node_types)


def test_figures_from_the_2026_price_scrape():
    """The starting figures (EUR a month; REFERENCE §4)."""
    s = shipped_sheets()
    assert [(n.name, n.vcpu, n.memory_gib, s["hetzner"].node_price(n)) for n in s["hetzner"].node_types] == [
        ("cx23", 2, 4, 4.75),
        ("cx33", 4, 8, 7.72),
        ("cx43", 8, 16, 14.27),
        ("ccx23", 4, 16, 37.47),
    ]
    assert (s["hetzner"].load_balancer.amount, s["hetzner"].block_storage.amount) == (8.91, 0.068)
    assert [s["ovh"].node_price(n) for n in s["ovh"].node_types] == [27.16, 37.38, 74.68]
    assert (s["ovh"].load_balancer.amount, s["ovh"].block_storage.amount) == (6.94, 0.048)
    assert [s["scaleway"].node_price(n) for n in s["scaleway"].node_types] == [14.74, 31.27, 81.91]
    assert (s["scaleway"].load_balancer.amount, s["scaleway"].block_storage.amount) == (9.99, 0.08)
    ionos = s["ionos"]
    assert (ionos.compute.vcpu.amount, ionos.compute.memory.amount) == (12.41, 1.83)
    assert ionos.node_price(ionos.node_type("vcpu4-ram16")) == pytest.approx(4 * 12.41 + 16 * 1.83)  # 78.92
    assert (ionos.load_balancer.amount, ionos.block_storage.amount, ionos.egress.amount) == (7, 0.15, 0.05)
    assert (s["aws"].control_plane.amount, s["aws"].load_balancer.amount, s["aws"].block_storage.amount) == (
        62.98,
        13.98,
        0.086,
    )
    assert [s["aws"].node_price(n) for n in s["aws"].node_types] == [67.86, 135.73]
    assert all(s["on-premises"].node_price(n) == 0 for n in s["on-premises"].node_types)


def test_a_sheet_older_than_a_year_is_flagged():
    hetzner = shipped_sheets()["hetzner"]
    assert hetzner.date == dt.date(2024, 12, 6)  # its oldest price
    assert hetzner.stale_prices(dt.date(2025, 6, 1)) == []
    assert hetzner.stale_prices(dt.date(2025, 12, 7)) == ["backup_storage (2024-12-06)"]
    assert shipped_sheets()["on-premises"].stale_prices(dt.date(2027, 11, 26)) == []
    assert shipped_sheets()["on-premises"].stale_prices(dt.date(2027, 11, 27)) != []


def test_price_sheets_travel_in_the_wheel():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["prices"] == "mims/_data/prices"
    assert "prices" in pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert paths.prices_dir() == paths.data_root() / "prices" and paths.prices_dir().is_dir()


def test_a_broken_sheet_names_the_file_position_and_field(tmp_path):
    path = tmp_path / "broken.yaml"
    text = (paths.prices_dir() / "ovh.yaml").read_text().replace("id: ovh", "id: broken")
    path.write_text(
        text.replace(
            "unit: GB-month\n  date: 2026-02-01\n  source: https://www.ovhcloud.com/en/public-cloud/prices/ Classic",
            "unit: month\n  date: 2026-02-01\n  source: https://www.ovhcloud.com/en/public-cloud/prices/ Classic",
        )
    )
    with pytest.raises(ChartError, match="block_storage must be priced per `GB-month`, not per `month`"):
        load_sheet(path)
    path.write_text(text.replace("currency: EUR", "currency: USD", 1))
    with pytest.raises(ChartError, match=r"broken.yaml:\d+:\d+: control_plane.currency"):
        load_sheet(path)
    (tmp_path / "other.yaml").write_text(text)
    with pytest.raises(ChartError, match="id `broken` must match the file name `other`"):
        load_sheet(tmp_path / "other.yaml")


def test_hosting_and_node_type_are_checked_against_the_sheets(write_blueprint):
    with pytest.raises(InvalidInput) as info:
        load_blueprint(write_blueprint({"budget": {"hosting": "hetzner-cloud"}}))
    [problem] = info.value.problems
    assert problem.field == "budget.hosting" and problem.line is not None
    assert (
        "no price sheet `hetzner-cloud`; choose one of aws, hetzner, ionos, on-premises, ovh, scaleway"
        in problem.message
    )
    with pytest.raises(InvalidInput) as info:
        load_blueprint(write_blueprint({"budget": {"hosting": "ovh", "node_type": "cx43"}}))
    [problem] = info.value.problems
    assert problem.field == "budget.node_type"
    assert problem.message == "`cx43` is not a node type of `ovh`; choose `auto` or one of d2-8, b3-8, b3-16"


def test_a_city_fills_in_its_own_on_premises_sheet(write_blueprint, tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    shutil.copy(paths.prices_dir() / "on-premises.yaml", folder)
    text = (folder / "on-premises.yaml").read_text()
    (folder / "on-premises.yaml").write_text(
        text.replace(
            "price: {amount: 0, currency: EUR, unit: month, date: 2026-11-26, source: to be filled in by the city}",
            "price: {amount: 95, currency: EUR, unit: month, date: 2026-11-20, source: city procurement 2026-17}",
        )
    )
    loaded = load_blueprint(write_blueprint({"budget": {"hosting": "on-premises", "price_sheets_dir": "prices"}}))
    sheets = sheets_for(loaded.blueprint.budget.price_sheets_dir, loaded.base_dir)
    assert sheets["on-premises"].node_price(sheets["on-premises"].node_types[0]) == 95
    assert not sheets["on-premises"].unpriced() and set(sheets) == OPTIONS


def test_a_missing_or_broken_price_sheets_dir_is_a_blueprint_problem(write_blueprint, tmp_path):
    with pytest.raises(InvalidInput) as info:
        load_blueprint(write_blueprint({"budget": {"price_sheets_dir": "nowhere"}}))
    assert info.value.problems[0].field == "budget.price_sheets_dir"
    assert "`nowhere` is not a folder" in info.value.problems[0].message
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "cheap.yaml").write_text("id: cheap\nname: Cheap\n")
    with pytest.raises(InvalidInput) as info:
        load_blueprint(write_blueprint({"budget": {"price_sheets_dir": "mine", "hosting": "cheap"}}))
    assert info.value.problems[0].field == "budget.price_sheets_dir"
    assert "price sheet is broken" in info.value.problems[0].message


def test_a_data_dir_without_price_sheets_keeps_the_installed_ones(monkeypatch, tmp_path):
    installed = paths.prices_dir()
    monkeypatch.setenv("MIMS_DATA_DIR", str(tmp_path))
    assert paths.prices_dir() == installed
    (tmp_path / "prices").mkdir()
    assert paths.prices_dir() == tmp_path / "prices"
