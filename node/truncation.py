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
    kept, cut = truncate_sorted(dataset, frame.sort(truncation_order(dataset, row)), row)
    return kept.sort(row), cut


def truncation_order(dataset: Dataset, row: str) -> list[str]:
    """The sort keys that put each person's rows, and within them each period's rows, in
    one contiguous run in keep order: (person, period date, file row)."""
    period = dataset.contribution_period
    return [dataset.privacy_unit, period, row] if period else [dataset.privacy_unit, row]


def truncate_sorted(
    dataset: Dataset, ordered: pl.DataFrame, row: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`truncate_to_bounds` of rows already sorted by `truncation_order`; the kept rows
    stay in that order. A row's rank is its position minus its run's first position (no
    hash windows over the string id)."""
    unit = dataset.privacy_unit
    period = dataset.contribution_period
    kept = ordered
    cut: list[pl.DataFrame] = []
    for bound in dataset.max_rows_per_period:
        assert period is not None
        rank = rank_in_run(pl.col(unit), period_code(pl.col(period), bound.period))
        reason = (
            f"{TRUNCATION_REASON}: more than {bound.max_rows} rows of this {unit} in "
            f"one {bound.period.value}; its earliest {bound.max_rows} are kept"
        )
        kept, over = _split(kept, rank < bound.max_rows)
        cut.append(_cut_lines(over, row, unit, reason))
    total = dataset.max_rows_per_unit
    reason = (
        f"{TRUNCATION_REASON}: more than {total} rows of this {unit}; its earliest {total} are kept"
    )
    kept, over = _split(kept, rank_in_run(pl.col(unit)) < total)
    cut.append(_cut_lines(over, row, unit, reason))
    return kept, pl.concat(cut)


def rank_in_run(*keys: pl.Expr) -> pl.Expr:
    """0-based position of each row within its run of equal `keys` (a frame sorted by them)."""
    position = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = pl.any_horizontal(position == 0, *(key.ne_missing(key.shift(1)) for key in keys))
    run_start = pl.when(starts).then(position).forward_fill()
    return position - run_start


def _split(rows: pl.DataFrame, keep: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    marked = rows.with_columns(keep.alias("__keep"))
    if marked.get_column("__keep").all():  # the usual case: nobody over this bound
        return rows, rows.clear()
    kept = marked.filter(pl.col("__keep")).drop("__keep")
    return kept, marked.filter(~pl.col("__keep")).drop("__keep")


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
