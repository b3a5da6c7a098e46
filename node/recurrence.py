"""The derived `recurrence_12m` column of `reports` (CFSR 12-month recurrence).

A substantiated/indicated report of a child within 12 months after an earlier
substantiated/indicated report of the same child. Reports of one child on the same day
count as one event. Ingest computes the column when the export lacks it, and rejects a
given value that disagrees with the report dates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

COLUMN = "recurrence_12m"
INPUTS = ("child_id", "report_date", "disposition")
"""The columns the derivation reads."""
ORDER = ["child_id", "report_date"]
"""The order `recurrence_12m_sorted` needs (any order of one child's same-day reports)."""
_VICTIM_DISPOSITIONS = ("substantiated", "indicated")


def recurrence_12m(frame: pl.DataFrame) -> pl.Series:
    """The recurrence flag of each row, in the frame's row order."""
    import polars as pl

    ordered = frame.select(pl.int_range(pl.len()).alias("__order"), *INPUTS).sort(ORDER)
    flagged = ordered.select("__order", recurrence_12m_sorted(ordered)).sort("__order")
    return flagged.get_column(COLUMN)


def recurrence_12m_sorted(frame: pl.DataFrame) -> pl.Series:
    """The recurrence flag of each row of a frame sorted by `ORDER`, in that order.

    Only running (cumulative) expressions, each step computed once: no group-by or join.
    The value of a row depends on its own disposition and on the child's earlier days
    only, so any order of one child's same-day reports gives every row the same value.
    """
    import polars as pl

    child, day = pl.col("child_id"), pl.col("report_date")
    new_child, new_day = pl.col("__new_child"), pl.col("__new_day")
    child_base, latest, previous = pl.col("__child_base"), pl.col("__latest"), pl.col("__previous")
    victim = pl.col("__victim")
    flagged = (
        frame.lazy()
        .select(
            day,
            (child != child.shift(1)).fill_null(True).alias("__new_child"),
            (day != day.shift(1)).fill_null(True).alias("__new_day"),
            pl.col("disposition").is_in(_VICTIM_DISPOSITIONS).alias("__victim"),
        )
        .with_columns((new_child.cast(pl.Int64).cum_sum() * _CHILD_STRIDE).alias("__child_base"))
        # Running max of (child, victim day) codes: the child's latest victim day so far.
        .with_columns(
            (
                pl.when(victim)
                .then(child_base + day.cast(pl.Int64) + _DAY_OFFSET)
                .otherwise(0)
                # always >= 1 on a victim day (_DAY_OFFSET)
                .cum_max()
                - child_base
            ).alias("__latest")
        )
        # Same-day reports share the value found at the first report of that day: the
        # latest victim day before it (-1: none).
        .with_columns(
            pl.when(new_child | new_day)
            .then(pl.when(~new_child).then(pl.when(latest > 0).then(latest).shift(1)).fill_null(-1))
            .forward_fill()
            .alias("__previous")
        )
        .select(
            (
                victim
                & (previous > 0)
                & (
                    day
                    <= pl.when(previous > 0)
                    .then(previous - _DAY_OFFSET)
                    .cast(pl.Date)
                    .dt.offset_by("12mo")
                )
            ).alias(COLUMN)
        )
        .collect()
    )
    return flagged.to_series()


def derive_recurrence(
    ordered: pl.DataFrame, row: str, rejects_row: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows sorted by `ORDER` with the derived column (in that order), and a reject line
    for each row whose given `recurrence_12m` disagrees with it (the row is dropped)."""
    import polars as pl

    derived = recurrence_12m_sorted(ordered)
    if COLUMN not in ordered.columns:
        return ordered.with_columns(derived), ordered.clear().select(
            pl.col(row).alias(rejects_row),
            pl.lit("").alias("column"),
            pl.lit("").alias("reason"),
        )
    given = pl.col(COLUMN)
    # One chunk layout for every column: `pl.format` panics on columns chunked
    # differently (polars 1.36; a bucket's rows come in chunks, the derived column in one).
    checked = ordered.with_columns(derived.alias("__derived")).rechunk()
    wrong = given.is_not_null() & (given != pl.col("__derived"))
    rejects = checked.filter(wrong).select(
        pl.col(row).alias(rejects_row),
        pl.lit(COLUMN).alias("column"),
        pl.format(
            "inconsistent: recurrence_12m is {} but this child's substantiated/indicated "
            "report dates give {} (CFSR 12-month recurrence); omit the column to derive it",
            given,
            pl.col("__derived"),
        ).alias("reason"),
    )
    kept = checked.filter(~wrong).with_columns(pl.col("__derived").alias(COLUMN)).drop("__derived")
    return kept, rejects


_DAY_OFFSET = 100_000
"""Shifts day numbers (days since 1970, >= -7,305 for EARLIEST_DATE) above zero."""
_CHILD_STRIDE = 1_000_000
"""Larger than any shifted day number, so child and day pack into one Int64."""
