"""The budget guard: a blueprint whose first-year estimate is above its cap is not deployed unless
the operator says so. `mims validate` warns; `mims plan` and `mims up` call `check_cap`."""

from __future__ import annotations

from mims.cost.model import Estimate
from mims.errors import OverBudget


def eur(amount: float) -> str:
    return f"EUR {amount:,.0f}"


def over_cap_message(estimate: Estimate) -> str:
    return (
        f"the first-year cost estimate of {eur(estimate.first_year_total)} on {estimate.sheet.name} "
        f"is {eur(-estimate.headroom)} over budget.cap_eur ({eur(estimate.cap)}); see "
        f"`mims cost {estimate.blueprint}` for the breakdown"
    )


def check_cap(estimate: Estimate, allow_over_budget: bool) -> None:
    """Raise OverBudget when the estimate is over the cap, unless `allow_over_budget`."""
    if estimate.within_cap or allow_over_budget:
        return
    raise OverBudget(over_cap_message(estimate) + "; lower the cost, raise the cap, or pass --allow-over-budget")
