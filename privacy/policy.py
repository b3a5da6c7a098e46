"""A node's privacy-budget policy: one budget per kind of person (privacy-unit kind), in
exact micro-rho units (see privacy/budget.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from privacy.budget import format_rho, rho_to_units_floor

BudgetScope = Literal["unit_kind", "analyst", "per_query"]


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
        unit_kind: str | None = None,
        detail: str = "",
    ) -> None:
        self.dataset = dataset
        self.scope = scope
        self.requested_units = requested_units
        self.remaining_units = remaining_units
        self.analyst = analyst
        self.unit_kind = unit_kind
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
            f"the query needs rho {requested} but the {self.unit_kind} budget at this node "
            f"(one per person, shared by every dataset about a {self.unit_kind}, here "
            f"{self.dataset!r}) has only rho {remaining} left; ask for a smaller budget or "
            "stop querying these datasets"
        )


def partnership_unit_kinds() -> dict[str, str]:
    """Each partnership dataset's privacy-unit kind (privacy/schema.py), loaded on use."""
    from privacy.schema import PARTNERSHIP_SCHEMA

    return PARTNERSHIP_SCHEMA.unit_kind_of_dataset()


@dataclass(frozen=True)
class BudgetPolicy:
    """Total units per privacy-unit kind, the largest charge per query, analyst caps.

    One budget per kind of person (`child`, `staff`): every dataset about that kind of
    person charges it, so what one person loses across those datasets is bounded by it
    (zCDP composition: the rho of the charges add up). `unit_kind_of_dataset` says which
    kind each dataset is about (the schema's `unit_kind`). A dataset of no known kind, or
    of a kind missing from `total_units_per_unit_kind`, has no budget: every query on it is
    refused. An analyst cap limits that analyst's spending across all datasets.
    """

    total_units_per_unit_kind: Mapping[str, int]
    max_units_per_query: int
    analyst_cap_units: Mapping[str, int] = field(default_factory=dict)
    unit_kind_of_dataset: Mapping[str, str] = field(default_factory=partnership_unit_kinds)

    def __post_init__(self) -> None:
        values = [
            self.max_units_per_query,
            *self.total_units_per_unit_kind.values(),
            *self.analyst_cap_units.values(),
        ]
        if any(not isinstance(value, int) or value < 0 for value in values):
            raise ValueError("budget policy values must be non-negative integer units")
        # Freeze the mappings too, so a policy cannot change under a running ledger.
        for name in ("total_units_per_unit_kind", "analyst_cap_units", "unit_kind_of_dataset"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @classmethod
    def from_rho(
        cls,
        total_rho_per_unit_kind: Mapping[str, str],
        max_rho_per_query: str,
        analyst_caps: Mapping[str, str] | None = None,
        unit_kind_of_dataset: Mapping[str, str] | None = None,
    ) -> BudgetPolicy:
        """Build from decimal rho strings (as in node.toml). Totals and caps round *down*
        to whole units, never granting more than configured; the per-query max likewise."""
        return cls(
            total_units_per_unit_kind={
                kind: rho_to_units_floor(value) for kind, value in total_rho_per_unit_kind.items()
            },
            max_units_per_query=rho_to_units_floor(max_rho_per_query),
            analyst_cap_units={
                name: rho_to_units_floor(value) for name, value in (analyst_caps or {}).items()
            },
            unit_kind_of_dataset=(
                unit_kind_of_dataset
                if unit_kind_of_dataset is not None
                else partnership_unit_kinds()
            ),
        )

    def unit_kind(self, dataset: str) -> str | None:
        """The kind of person `dataset` is about (None: not a dataset this policy knows)."""
        return self.unit_kind_of_dataset.get(dataset)

    def datasets_of(self, unit_kind: str) -> tuple[str, ...]:
        """The datasets sharing `unit_kind`'s budget, sorted."""
        return tuple(
            sorted(name for name, kind in self.unit_kind_of_dataset.items() if kind == unit_kind)
        )

    def unit_kind_total(self, unit_kind: str) -> int:
        return self.total_units_per_unit_kind.get(unit_kind, 0)

    def spent_by_kind_of(self, dataset: str, dataset_spent: Callable[[str], int]) -> int:
        """What the budget of `dataset`'s unit kind has spent: `dataset_spent` of every
        dataset of that kind (0 if `dataset` is of no known kind)."""
        kind = self.unit_kind(dataset)
        return 0 if kind is None else sum(map(dataset_spent, self.datasets_of(kind)))

    def spent_by_unit_kind(self, spent_by_dataset: Mapping[str, int]) -> dict[str, int]:
        """Spending per unit kind (each kind with a budget or a charge), from per-dataset
        spending; a dataset of no known kind that spent anything is reported under its own
        name (a ledger reset's genesis entry, which spends nothing, is left out)."""
        spent = dict.fromkeys(self.total_units_per_unit_kind, 0)
        for dataset, units in spent_by_dataset.items():
            kind = self.unit_kind(dataset) or dataset
            if kind == dataset and not units:
                continue
            spent[kind] = spent.get(kind, 0) + units
        return spent

    def check(
        self,
        *,
        dataset: str,
        analyst: str,
        cost_units: int,
        dataset_spent: Callable[[str], int],
        analyst_spent: int,
    ) -> None:
        """Raise BudgetExceeded unless a charge of `cost_units` on `dataset` fits every
        limit; `dataset_spent(name)` is what dataset `name` has spent so far, summed over
        the datasets of `dataset`'s unit kind."""
        if cost_units > self.max_units_per_query:
            raise BudgetExceeded(
                dataset=dataset,
                scope="per_query",
                requested_units=cost_units,
                remaining_units=self.max_units_per_query,
                analyst=analyst,
            )
        kind = self.unit_kind(dataset)
        if kind is None or kind not in self.total_units_per_unit_kind:
            raise BudgetExceeded(
                dataset=dataset,
                scope="unit_kind",
                requested_units=cost_units,
                remaining_units=0,
                analyst=analyst,
                unit_kind=kind,
                detail=(
                    f"this node has no privacy budget for dataset {dataset!r} (privacy unit: "
                    f"{kind or 'unknown'}); ask the node operator to add it under "
                    "[budget.total_rho_per_unit_kind] in node.toml"
                ),
            )
        kind_remaining = self.unit_kind_total(kind) - self.spent_by_kind_of(dataset, dataset_spent)
        if cost_units > kind_remaining:
            raise BudgetExceeded(
                dataset=dataset,
                scope="unit_kind",
                requested_units=cost_units,
                remaining_units=max(kind_remaining, 0),
                analyst=analyst,
                unit_kind=kind,
            )
        cap = self.analyst_cap_units.get(analyst)
        if cap is not None and cost_units > cap - analyst_spent:
            raise BudgetExceeded(
                dataset=dataset,
                scope="analyst",
                requested_units=cost_units,
                remaining_units=max(cap - analyst_spent, 0),
                analyst=analyst,
                unit_kind=kind,
            )

    def remaining(
        self,
        dataset: str,
        dataset_spent: Callable[[str], int],
        analyst: str | None,
        analyst_spent: int,
    ) -> int:
        """Units still available to `analyst` (or anyone, if None) on `dataset`: what its
        unit kind has left (see `check`), within the analyst's cap."""
        kind = self.unit_kind(dataset)
        total = self.unit_kind_total(kind) if kind is not None else 0
        remaining = max(total - self.spent_by_kind_of(dataset, dataset_spent), 0)
        if analyst is not None and analyst in self.analyst_cap_units:
            remaining = min(remaining, max(self.analyst_cap_units[analyst] - analyst_spent, 0))
        return remaining
