"""Spending per privacy-unit kind: what each kind of person has lost at a node, in rho and
in epsilon at the partnership's delta, from the ledger's per-dataset totals.

The ledger records every charge under its dataset; a unit kind's spending is the sum over
its datasets (zCDP composition: rho adds up). Old entries, written before budgets were per
unit kind, are counted the same way: the schema names each dataset's unit kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from privacy.epsilon import epsilon_for_rho_units
from privacy.policy import BudgetPolicy


@dataclass(frozen=True)
class UnitKindSpending:
    """One unit kind's budget at a node: total, spent and left, in micro-rho."""

    unit_kind: str
    datasets: tuple[str, ...]
    total_units: int | None
    """None: the policy has no budget for this kind (its datasets are refused)."""
    spent_units: int
    remaining_units: int
    spent_epsilon: str
    """Epsilon at `delta` of the spent rho (OpenDP's zCDP -> approximate-DP map)."""
    total_epsilon: str
    delta: str


def spending_per_unit_kind(
    policy: BudgetPolicy,
    spent_by_dataset: Mapping[str, int],
    delta: str,
    remaining_for: Mapping[str, int] | None = None,
    *,
    with_epsilon: bool = True,
) -> tuple[UnitKindSpending, ...]:
    """Every unit kind with a budget or a charge, sorted by name. `remaining_for`
    overrides what is left per kind (e.g. within an analyst's cap); without
    `with_epsilon` the epsilons are "" (each is an OpenDP conversion of several ms)."""

    def epsilon(units: int) -> str:
        return epsilon_for_rho_units(units, delta) if with_epsilon else ""

    rows = []
    for kind, spent in sorted(policy.spent_by_unit_kind(spent_by_dataset).items()):
        total = policy.total_units_per_unit_kind.get(kind)
        left = max((total or 0) - spent, 0)
        rows.append(
            UnitKindSpending(
                unit_kind=kind,
                datasets=policy.datasets_of(kind) or (kind,),
                total_units=total,
                spent_units=spent,
                remaining_units=(remaining_for or {}).get(kind, left),
                spent_epsilon=epsilon(spent),
                total_epsilon=epsilon(total or 0),
                delta=delta,
            )
        )
    return tuple(rows)
