"""`mims cost` and the budget warning of `mims validate`, through the real entry point."""

from __future__ import annotations

import json

from tests.conftest import EXAMPLES

SMALL_CITY = next(p for p in EXAMPLES if p.name == "small-city.yaml")
OPTIONS = ["hetzner", "ovh", "scaleway", "ionos", "aws", "on-premises"]
REQUIRED = {
    "currency",
    "hosting",
    "node_type",
    "node_count",
    "infrastructure_per_year",
    "staff_first_year",
    "first_year_total",
    "horizon_years",
    "horizon_total",
    "cap",
    "within_cap",
    "components",
}


def test_cost_prints_tables_by_category_and_by_component(cli):
    code, out, err = cli("cost", SMALL_CITY)
    assert code == 0
    assert "alderbrook on Hetzner Cloud (self-managed k3s)" in out
    assert "By category" in out and "By component" in out and "Software licences (no licence fees)" in out
    assert "1 x cx43 (8 vCPU, 16 GiB, EUR 14.27 a month), the cheapest type that holds every pod" in out
    assert "39,619.76" in out and "78,859.28" in out and "419.76" in out
    assert "First year EUR 39,620, within the EUR 50,000 cap (EUR 10,380 to spare); 3 years EUR 78,859." in out
    assert "SSPL-1.0" in out
    # the shipped Hetzner sheet has figures from before 2025-11-26 (backup storage, egress)
    assert "warning: price sheet `hetzner` has prices older than a year" in err


def test_cost_json(cli):
    code, out, _ = cli("cost", SMALL_CITY, "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= REQUIRED
    assert (report["currency"], report["hosting"], report["node_type"], report["node_count"]) == (
        "EUR",
        "hetzner",
        "cx43",
        1,
    )
    assert (report["infrastructure_per_year"], report["staff_first_year"], report["first_year_total"]) == (
        419.76,
        39200.0,
        39619.76,
    )
    assert (report["horizon_years"], report["horizon_total"], report["cap"], report["within_cap"]) == (
        3,
        78859.28,
        50000,
        True,
    )
    assert {c["name"] for c in report["components"]} == {
        "ai-registry",
        "broker",
        "catalogue",
        "data-models",
        "gateway",
        "iam",
        "ingestion",
        "monitoring",
    }
    assert report["price_sheet"]["stale"] is True
    assert all(line["source"] for line in report["lines"] if line["category"] in ("nodes", "egress"))
    assert sum(p["cpu"] for p in report["packing"]) == 1.97


def test_cost_compare_shows_every_option(cli):
    code, out, _ = cli("cost", SMALL_CITY, "--compare", ",".join(OPTIONS))
    assert code == 0
    for option, nodes in zip(
        OPTIONS, ["1 x cx43", "2 x d2-8", "4 x dev1-m", "1 x vcpu4-ram16", "2 x m6a.large", "1 x server-4-16"]
    ):
        line = next(row for row in out.splitlines() if row.startswith(option + " "))
        assert nodes in line
    code, out, _ = cli("cost", SMALL_CITY, "--compare", "all", "--json")
    reports = json.loads(out)
    assert [r["hosting"] for r in reports] == ["hetzner", "ionos", "ovh", "scaleway", "aws", "on-premises"]
    assert all(set(r) >= REQUIRED for r in reports)
    assert (
        min((r for r in reports if r["hosting_kind"] == "eu-provider"), key=lambda r: r["first_year_total"])["hosting"]
        == "hetzner"
    )


def test_cost_markdown(cli):
    code, out, _ = cli("cost", SMALL_CITY, "--markdown")
    assert code == 0 and out.startswith("# Cost of alderbrook on Hetzner Cloud (self-managed k3s)\n")
    assert "| **total** | | **39,619.76** | **78,859.28** |" in out
    assert "| catalogue | ckan | 4 | 0.575 |" in out
    code, out, _ = cli("cost", SMALL_CITY, "--markdown", "--compare", "all")
    assert code == 0
    assert sum(1 for row in out.splitlines() if row.startswith("| ") and "`)" in row) == len(OPTIONS)


def test_cost_chart_files(cli, tmp_path):
    code, _, err = cli("cost", SMALL_CITY, "--compare", "all", "--chart", tmp_path / "options.svg")
    assert code == 0 and f"wrote {tmp_path / 'options.svg'}" in err
    assert (tmp_path / "options.svg").read_text().startswith("<svg ")
    code, _, err = cli("cost", SMALL_CITY, "--chart", tmp_path / "cost.gif")
    assert code == 2 and "must end in .svg or .png" in err


def test_cost_usage_errors(cli):
    code, _, err = cli("cost", SMALL_CITY, "--json", "--markdown")
    assert code == 2 and "choose one of --json and --markdown" in err
    code, _, err = cli("cost", SMALL_CITY, "--compare", "hetzner,azure")
    assert code == 2 and "--compare: no price sheet `azure`; choose from aws, hetzner" in err


def test_cost_of_a_blueprint_with_a_wrong_hosting_option(cli, write_blueprint):
    code, out, err = cli("cost", write_blueprint({"budget": {"hosting": "hetzner-cloud"}}))
    assert code == 1 and out == ""
    assert ": budget.hosting: no price sheet `hetzner-cloud`" in err


def test_validate_warns_when_over_the_cap(cli, write_blueprint):
    path = write_blueprint({"budget": {"cap_eur": 1000}})
    code, out, err = cli("validate", path)
    assert code == 0 and "valid" in out
    assert (
        "warning: the first-year cost estimate of EUR 39,620 on Hetzner Cloud (self-managed k3s) is "
        "EUR 38,620 over budget.cap_eur (EUR 1,000)" in err
    )
    code, out, err = cli("validate", path, "--json")
    assert code == 0 and "warning:" in err
    assert json.loads(out)["budget"] == {
        "hosting": "hetzner",
        "first_year_total": 39619.76,
        "cap": 1000,
        "within_cap": False,
    }


def test_validate_is_quiet_within_the_cap(cli):
    code, out, err = cli("validate", SMALL_CITY, "--json")
    assert code == 0 and err == "" and json.loads(out)["budget"]["within_cap"] is True
