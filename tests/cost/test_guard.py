"""The budget guard `plan` and `up` call: over the cap stops with its own exit code, unless allowed."""

from __future__ import annotations

import pytest

from mims import errors
from mims.blueprint import load_blueprint
from mims.cost.guard import check_cap, over_cap_message
from mims.cost.model import estimate
from mims.errors import MimsError, OverBudget


@pytest.fixture
def over_cap(write_blueprint, renderer):
    return estimate(renderer.render(load_blueprint(write_blueprint({"budget": {"cap_eur": 1000}}))))


def test_over_the_cap_is_refused_with_a_clear_message(over_cap):
    with pytest.raises(OverBudget) as info:
        check_cap(over_cap, allow_over_budget=False)
    message = str(info.value)
    # 39,619.76 on Hetzner against a cap of 1,000 (tests/cost/test_model.py has the arithmetic).
    assert "first-year cost estimate of EUR 39,620 on Hetzner Cloud (self-managed k3s)" in message
    assert "EUR 38,620 over budget.cap_eur (EUR 1,000)" in message
    assert message.endswith("lower the cost, raise the cap, or pass --allow-over-budget")


def test_allowed_over_the_cap_and_within_the_cap_pass(over_cap, rendered_examples):
    assert check_cap(over_cap, allow_over_budget=True) is None
    assert check_cap(estimate(rendered_examples["small-city"]), allow_over_budget=False) is None


def test_over_budget_has_an_exit_code_of_its_own():
    assert OverBudget.exit_code == 5 and issubclass(OverBudget, MimsError)
    codes = {
        cls: cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, MimsError) and cls is not MimsError
    }
    others = {code for cls, code in codes.items() if cls is not OverBudget}
    assert OverBudget.exit_code not in others


def test_the_message_points_at_the_breakdown(over_cap):
    assert over_cap_message(over_cap).endswith(f"see `mims cost {over_cap.blueprint}` for the breakdown")
