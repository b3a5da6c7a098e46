"""Ingest-time truncation of each person's rows to the schema's contribution bounds.

Rule (deterministic, documented in docs/privacy-model.md): a person's valid rows are
ordered by the dataset's contribution-period date, then by their row number in the
file. For each declared period bound (month, quarter, year) the earliest rows up to the
bound in each period are kept; then the earliest rows up to the total bound. Rows past
a bound are cut, one reject-report line each, saying which bound and how many were
kept. Only the excess rows of that person go, never all of them, and nobody else's.

Queries truncate again with the same bounds (OpenDP identifier truncation, in
privacy/plan.py), so a snapshot that did not come through here cannot break them.
Node-side only (Polars).
"""

from __future__ import annotations

import polars as pl

from privacy.query import TimeBucket
from privacy.schema import Dataset

TRUNCATION_REASON = "over contribution bound"
"""How every reject-report line of a cut row starts."""


def truncate_to_bounds(
    dataset: Dataset, frame: pl.DataFrame, row: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept rows in their original order, cut rows as (row, column, reason) lines).

    `frame` holds parsed, valid rows with their 1-based file row number in `row`.
    """
    unit = dataset.privacy_unit
    order = [dataset.contribution_period, row] if dataset.contribution_period else [row]
    kept = frame.sort(order)
    cut: list[pl.DataFrame] = []
    for bound in dataset.max_rows_per_period:
        assert dataset.contribution_period is not None
        bucket = period_code(pl.col(dataset.contribution_period), bound.period)
        rank = pl.int_range(pl.len()).over(unit, bucket)
        reason = (
            f"{TRUNCATION_REASON}: more than {bound.max_rows} rows of this {unit} in "
            f"one {bound.period.value}; its earliest {bound.max_rows} are kept"
        )
        cut.append(_cut_lines(kept.filter(rank >= bound.max_rows), row, unit, reason))
        kept = kept.filter(rank < bound.max_rows)
    total = dataset.max_rows_per_unit
    rank = pl.int_range(pl.len()).over(unit)
    reason = (
        f"{TRUNCATION_REASON}: more than {total} rows of this {unit}; its earliest {total} are kept"
    )
    cut.append(_cut_lines(kept.filter(rank >= total), row, unit, reason))
    return kept.filter(rank < total).sort(row), pl.concat(cut)


def _cut_lines(rows: pl.DataFrame, row: str, unit: str, reason: str) -> pl.DataFrame:
    return rows.select(
        pl.col(row).alias("row"), pl.lit(unit).alias("column"), pl.lit(reason).alias("reason")
    )


def period_code(day: pl.Expr, period: TimeBucket) -> pl.Expr:
    """The calendar period of a date as one integer (privacy.timebuckets' codes)."""
    year = day.dt.year().cast(pl.Int64)
    month = day.dt.month().cast(pl.Int64)
    if period is TimeBucket.YEAR:
        return year
    if period is TimeBucket.QUARTER:
        return year * 4 + (month - 1) // 3
    return year * 12 + (month - 1)
