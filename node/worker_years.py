"""The worker-year view: `workforce_years` derived from monthly `workforce` rows.

Retention questions ("how many caseworkers left in 2022, out of how many?") are about
people per year, but `workforce` has one row per worker per month, so a count by year
must allow 12 rows of one person per cell. Here each worker's months of a calendar year
collapse into one row, which makes "workers per year" and "separations per year" counts
of at most one row per person per cell:

* `year_start`: January 1 of the year; `months_active`: months with a row (1-12);
* `role`, `unit`, `tenure_band`: from the worker's last month of the year (tenure
  bands as in the survey: < 12, 12-35, 36-71, 72-131, >= 132 months);
* `separated`: any month of the year has a separation; `separation_type`: the type of
  the first such month, else "none".

Deterministic, and a function of each worker's own rows only (adding or removing one
worker changes only that worker's rows here). A worker keeps at most the dataset's
total bound of years (the earliest). Turnover for a year is separations / workers.
Node-side only (Polars).
"""

from __future__ import annotations

import polars as pl

from privacy.schema import PARTNERSHIP_SCHEMA, TENURE_BANDS

TENURE_BAND_STARTS = (12, 36, 72, 132)
"""Months at which the next tenure band starts (TENURE_BANDS order)."""
WORKER_YEARS = PARTNERSHIP_SCHEMA.dataset("workforce_years")


def derive_worker_years(workforce: pl.DataFrame) -> pl.DataFrame:
    """One row per worker per calendar year, in `workforce_years` column order."""
    year = pl.col("month").dt.year()
    separated_type = pl.col("separation_type").filter(pl.col("separated"))
    per_year = (
        workforce.sort("worker_id", "month")
        .group_by("worker_id", year.alias("__year"), maintain_order=True)
        .agg(
            pl.col("role").last(),
            pl.col("unit").last(),
            pl.col("tenure_months").last().alias("__tenure"),
            pl.len().cast(pl.Int64).clip(upper_bound=12).alias("months_active"),
            pl.col("separated").any().alias("separated"),
            separated_type.first().fill_null("none").alias("separation_type"),
        )
        .filter(pl.int_range(pl.len()).over("worker_id") < WORKER_YEARS.max_rows_per_unit)
    )
    return per_year.select(
        "worker_id",
        pl.date(pl.col("__year"), 1, 1).alias("year_start"),
        "role",
        "unit",
        _tenure_band(pl.col("__tenure")).alias("tenure_band"),
        "months_active",
        "separated",
        "separation_type",
    )


def _tenure_band(months: pl.Expr) -> pl.Expr:
    band = pl.lit(TENURE_BANDS[0])
    for start, name in zip(TENURE_BAND_STARTS, TENURE_BANDS[1:], strict=True):
        band = pl.when(months >= start).then(pl.lit(name)).otherwise(band)
    return band
