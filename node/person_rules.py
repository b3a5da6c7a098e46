"""The ingest rules that look at all of one person's rows, from one sort of a few columns.

Truncation to the contribution bounds (node/truncation.py), the derived
`recurrence_12m` (node/recurrence.py) and the check of the kept rows against the
contribution bounds (node/bounds_record.py) each need a person's rows together and in
date order. Sorting the whole table for each of them, and back, took most of ingest's
time. Here only the columns they read (file row, person, date, and the derivation's
inputs) are sorted, once, by (person, date, file row); the kept rows and derived values
go back to the table's row order by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from node import recurrence
from node.bounds_record import within_contribution_bounds
from node.truncation import truncate_sorted, truncation_order
from privacy.schema import Dataset

if TYPE_CHECKING:
    import polars as pl

_POSITION = "__position"


@dataclass(frozen=True)
class PersonRules:
    """The outcome of the per-person rules on one part of an export."""

    kept: pl.DataFrame
    """The kept rows, in the input's order, with any derived columns."""
    cut: pl.DataFrame
    """A (row, column, reason) line for each row cut for a contribution bound."""
    inconsistent: pl.DataFrame
    """A (row, column, reason) line for each row whose given derived value is wrong."""
    within_bounds: bool
    """Every person's kept rows were checked to be within the contribution bounds."""


def apply_person_rules(
    spec: Dataset, candidates: pl.DataFrame, row: str, rejects_row: str
) -> PersonRules:
    """Truncate `candidates` (valid rows in file order, their file row number in `row`) to
    the contribution bounds, derive the derived columns, and check the bounds.

    Whole-table equivalents: `node.truncation.truncate_to_bounds`,
    `node.recurrence.recurrence_12m` and `node.bounds_record.verified_bounds`.
    """
    import polars as pl

    order = truncation_order(spec, row)
    derives = spec.name == "reports"
    inputs = [*order]
    if derives:
        given = [recurrence.COLUMN] if recurrence.COLUMN in candidates.columns else []
        inputs += [name for name in (*recurrence.INPUTS, *given) if name not in inputs]
    ordered = candidates.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(_POSITION), *inputs
    ).sort(order)
    kept, cut = truncate_sorted(spec, ordered, row)
    inconsistent = cut.clear()
    if derives:
        if order[:2] != recurrence.ORDER:
            kept = kept.sort(recurrence.ORDER)
        kept, inconsistent = recurrence.derive_recurrence(kept, row, rejects_row)
    within_bounds = within_contribution_bounds(spec, kept)
    return PersonRules(
        kept=_back_in_order(candidates, kept, derived=[recurrence.COLUMN] if derives else []),
        cut=cut,
        inconsistent=inconsistent,
        within_bounds=within_bounds,
    )


def _back_in_order(
    candidates: pl.DataFrame, kept: pl.DataFrame, derived: list[str]
) -> pl.DataFrame:
    """The candidates whose position is in `kept`, in their order, with `kept`'s values
    of the derived columns."""
    import polars as pl

    kept = kept.sort(_POSITION)
    rows = candidates
    if kept.height < candidates.height:
        keep = pl.repeat(False, candidates.height, eager=True)
        rows = rows.filter(keep.scatter(kept.get_column(_POSITION), True))
    return rows.with_columns(kept.get_column(name) for name in derived)
