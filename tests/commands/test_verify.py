"""`mims verify` refuses what it cannot probe, at once and in one line, with its own exit code."""

from __future__ import annotations

from tests.conftest import EXAMPLES

SMALL_CITY = next(p for p in EXAMPLES if p.name == "small-city.yaml")  # cluster.target: sim


def test_a_simulated_cluster_is_refused_in_one_line_with_exit_9(cli):
    code, out, err = cli("verify", SMALL_CITY)
    assert code == 9 and out == ""
    assert err.strip().splitlines() == [
        "error: the blueprint targets the simulated cluster: its pods are scheduled but no container runs, so "
        "nothing answers a probe; verify on a real node (`cluster.target: node`) or cluster (`--context`)"
    ]


def test_an_unknown_mim_is_a_usage_error(cli):
    code, _, err = cli("verify", SMALL_CITY, "--only", "MIM9")
    assert code == 2 and "--only MIM9: not a MIM mims verifies (choose from MIM1, MIM2, MIM3, MIM5, MIM6, ops)" in err
