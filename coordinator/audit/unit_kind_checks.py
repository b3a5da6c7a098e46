"""Spending per privacy-unit kind: the sum of the charges on every dataset about one kind
of person (child, staff) within the node's published budget for that kind.

The unit kind of an entry is derived from its dataset by the partnership's schema, for
entries written before budgets were per unit kind as for new ones: the entry format did
not change, so old ledgers verify as they are. A node that publishes no per-unit-kind
budgets (older software) is checked per dataset only (`charge_checks.check_spending`).
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.audit.findings import Findings
from coordinator.audit.report import UnitKindSpending
from kernel.messages import NodeDescription
from privacy.budget import format_rho
from privacy.ledger.entry import LedgerEntry
from privacy.ledger.genesis import is_genesis
from privacy.policy import BudgetPolicy


def check_unit_kind_spending(
    entries: Sequence[LedgerEntry], description: NodeDescription, findings: Findings
) -> tuple[UnitKindSpending, ...]:
    """Spent rho per unit kind against the published totals; a row per kind."""
    published = description.policy.total_rho_per_unit_kind
    if not published:
        return ()
    try:
        policy = BudgetPolicy.from_rho(published, description.policy.max_rho_per_query)
    except ValueError as exc:
        findings.fail(f"the node publishes per-person budgets that cannot be read: {exc}")
        return ()
    spent: dict[str, int] = {}
    charges: dict[str, int] = {}
    for entry in entries:
        if is_genesis(entry):
            continue
        kind = policy.unit_kind(entry.dataset) or entry.dataset
        spent[kind] = spent.get(kind, 0) + entry.cost_units
        charges[kind] = charges.get(kind, 0) + 1
    node_figures = {budget.unit_kind: budget for budget in description.unit_kind_budgets}
    rows = []
    for kind in sorted(set(spent) | set(published)):
        used = spent.get(kind, 0)
        total = published.get(kind)
        if total is None and used:
            findings.fail(f"unit kind {kind!r} spent rho {format_rho(used)} but has no budget")
        elif total is not None and used > policy.unit_kind_total(kind):
            findings.fail(
                f"the {kind} budget spent rho {format_rho(used)} (the sum of its "
                f"{charges.get(kind, 0)} charges on {', '.join(policy.datasets_of(kind))}), "
                f"more than its policy total {total}"
            )
        figure = node_figures.get(kind)
        if figure is not None and figure.spent_units != used:
            findings.warn(
                f"the node says the {kind} budget spent rho {format_rho(figure.spent_units)}, "
                f"but its charges sum to {format_rho(used)}"
            )
        rows.append(
            UnitKindSpending(
                unit_kind=kind,
                datasets=policy.datasets_of(kind) or (kind,),
                spent_units=used,
                spent_rho=format_rho(used),
                total_rho=total,
                charges=charges.get(kind, 0),
                spent_epsilon=(
                    figure.spent_epsilon or None
                    if figure is not None and figure.spent_units == used
                    else None
                ),
                delta=description.policy.delta,
            )
        )
    return tuple(rows)
