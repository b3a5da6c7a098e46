"""The node's budgets per privacy-unit kind as `Describe` publishes them: total, spent and
(for the caller) left, with their epsilon at the partnership's delta."""

from __future__ import annotations

from kernel.messages import PolicyView, UnitKindBudget
from node.settings import NodeSettings
from privacy.budget import format_rho
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy
from privacy.unit_spending import spending_per_unit_kind


def published_policy(
    settings: NodeSettings, policy: BudgetPolicy, analyst: str | None
) -> PolicyView:
    """The policy as published: totals per unit kind, and for older clients each allowed
    dataset with its unit kind's (shared) total."""
    budget = settings.budget
    return PolicyView(
        datasets=tuple(settings.allowed_datasets),
        total_rho_per_dataset={
            dataset: format_rho(policy.unit_kind_total(policy.unit_kind(dataset) or ""))
            for dataset in settings.allowed_datasets
        },
        max_rho_per_query=budget.max_rho_per_query,
        analyst_cap_rho=budget.analyst_caps.get(analyst) if analyst else None,
        delta=budget.delta,
        total_rho_per_unit_kind=budget.unit_kind_totals(),
    )


def published_unit_kind_budgets(
    ledger: Ledger, analyst: str | None, *, with_epsilon: bool
) -> tuple[UnitKindBudget, ...]:
    """Every unit kind with a budget or a charge, as of the last commit; what is left is
    the caller's (within an analyst's cap) when `analyst` is set. Epsilons only
    `with_epsilon` (each is an OpenDP conversion of several ms; a query's Describe skips
    them)."""
    policy = ledger.policy
    spent = ledger.snapshot_reader.spent_by_dataset()
    left = {
        kind: ledger.remaining_units(datasets[0], analyst)
        for kind in policy.total_units_per_unit_kind
        if (datasets := policy.datasets_of(kind))
    }
    return tuple(
        UnitKindBudget(
            unit_kind=row.unit_kind,
            datasets=row.datasets,
            total_rho="" if row.total_units is None else format_rho(row.total_units),
            spent_units=row.spent_units,
            remaining_units=row.remaining_units,
            spent_epsilon=row.spent_epsilon,
            total_epsilon=row.total_epsilon,
        )
        for row in spending_per_unit_kind(
            policy, spent, ledger.delta, remaining_for=left, with_epsilon=with_epsilon
        )
    )
