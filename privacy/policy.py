"""A node's privacy-budget policy, in exact micro-rho units (see privacy/budget.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Literal

from privacy.budget import format_rho, rho_to_units_ceil, units_to_rho

BudgetScope = Literal["dataset", "analyst", "per_query"]


class BudgetExceeded(Exception):  # noqa: N818 - name fixed by the node service contract
    """A query does not fit the budget; nothing was charged and nothing released."""

    def __init__(
        self,
        *,
        dataset: str,
        scope: BudgetScope,
        requested_units: int,
        remaining_units: int,
        analyst: str | None = None,
        detail: str = "",
    ) -> None:
        self.dataset = dataset
        self.scope = scope
        self.requested_units = requested_units
        self.remaining_units = remaining_units
        self.analyst = analyst
        super().__init__(self._message(detail))

    def _message(self, detail: str) -> str:
        requested = format_rho(self.requested_units)
        remaining = format_rho(self.remaining_units)
        if detail:
            return detail
        if self.scope == "per_query":
            return (
                f"the query needs rho {requested} but this node allows at most rho {remaining} "
                "per query; ask for a smaller budget (wider intervals) or split the question"
            )
        if self.scope == "analyst":
            return (
                f"the query needs rho {requested} but analyst {self.analyst!r} has only rho "
                f"{remaining} left of their cap at this node; ask for a smaller budget"
            )
        return (
            f"the query needs rho {requested} but dataset {self.dataset!r} has only rho "
            f"{remaining} left at this node; ask for a smaller budget or stop querying it"
        )


@dataclass(frozen=True)
class BudgetPolicy:
    """Total units per dataset, the largest charge per query, optional per-analyst caps.

    A dataset missing from `total_units_per_dataset` has no budget: every query on it
    is refused. An analyst cap limits that analyst's spending across all datasets.
    """

    total_units_per_dataset: Mapping[str, int]
    max_units_per_query: int
    analyst_cap_units: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = [
            self.max_units_per_query,
            *self.total_units_per_dataset.values(),
            *self.analyst_cap_units.values(),
        ]
        if any(not isinstance(value, int) or value < 0 for value in values):
            raise ValueError("budget policy values must be non-negative integer units")
        # Freeze the mappings too, so a policy cannot change under a running ledger.
        object.__setattr__(
            self, "total_units_per_dataset", MappingProxyType(dict(self.total_units_per_dataset))
        )
        object.__setattr__(
            self, "analyst_cap_units", MappingProxyType(dict(self.analyst_cap_units))
        )

    @classmethod
    def from_rho(
        cls,
        total_rho_per_dataset: Mapping[str, str],
        max_rho_per_query: str,
        analyst_caps: Mapping[str, str] | None = None,
    ) -> BudgetPolicy:
        """Build from decimal rho strings (as in node.toml). Totals and caps round *down*
        to whole units, never granting more than configured; the per-query max likewise."""
        return cls(
            total_units_per_dataset={
                name: _units_floor(value) for name, value in total_rho_per_dataset.items()
            },
            max_units_per_query=_units_floor(max_rho_per_query),
            analyst_cap_units={
                name: _units_floor(value) for name, value in (analyst_caps or {}).items()
            },
        )

    def dataset_total(self, dataset: str) -> int:
        return self.total_units_per_dataset.get(dataset, 0)

    def check(
        self,
        *,
        dataset: str,
        analyst: str,
        cost_units: int,
        dataset_spent: int,
        analyst_spent: int,
    ) -> None:
        """Raise BudgetExceeded unless a charge of `cost_units` fits every limit."""
        if cost_units > self.max_units_per_query:
            raise BudgetExceeded(
                dataset=dataset,
                scope="per_query",
                requested_units=cost_units,
                remaining_units=self.max_units_per_query,
                analyst=analyst,
            )
        if dataset not in self.total_units_per_dataset:
            raise BudgetExceeded(
                dataset=dataset,
                scope="dataset",
                requested_units=cost_units,
                remaining_units=0,
                analyst=analyst,
                detail=(
                    f"this node has no privacy budget for dataset {dataset!r}; ask the node "
                    "operator to add it under [budget.total_rho_per_dataset] in node.toml"
                ),
            )
        dataset_remaining = self.dataset_total(dataset) - dataset_spent
        if cost_units > dataset_remaining:
            raise BudgetExceeded(
                dataset=dataset,
                scope="dataset",
                requested_units=cost_units,
                remaining_units=max(dataset_remaining, 0),
                analyst=analyst,
            )
        cap = self.analyst_cap_units.get(analyst)
        if cap is not None and cost_units > cap - analyst_spent:
            raise BudgetExceeded(
                dataset=dataset,
                scope="analyst",
                requested_units=cost_units,
                remaining_units=max(cap - analyst_spent, 0),
                analyst=analyst,
            )

    def remaining(
        self, dataset: str, dataset_spent: int, analyst: str | None, analyst_spent: int
    ) -> int:
        """Units still available to `analyst` (or anyone, if None) on `dataset`."""
        remaining = max(self.dataset_total(dataset) - dataset_spent, 0)
        if analyst is not None and analyst in self.analyst_cap_units:
            remaining = min(remaining, max(self.analyst_cap_units[analyst] - analyst_spent, 0))
        return remaining


def _units_floor(rho: str) -> int:
    """Whole units not exceeding `rho`: a configured budget is never rounded up."""
    units = rho_to_units_ceil(rho)  # validates: finite, non-negative, in range
    exact = Fraction(Decimal(rho.strip()))
    return units if units_to_rho(units) <= exact else units - 1
