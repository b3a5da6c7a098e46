"""Contribution bounds of one query: how many rows one privacy unit can put into it.

The schema declares, per dataset, a total bound (`max_rows_per_unit`) and bounds per
calendar period of one date column (`max_rows_per_period`, e.g. at most 1 workforce row
per worker per month and 12 per year). A query sees fewer rows of a person than the
total when its date range on that column is short, and puts fewer rows of a person into
one cell when it groups by a time bucket of that column. Both numbers follow from the
schema and the query alone (public), and the plan hands them to OpenDP as identifier
truncations (privacy/plan.py), which OpenDP both enforces and turns into sensitivity:

* `total`: rows of one unit the query keeps (OpenDP's `Bound(by=[], per_group=...)`,
  from `int_range(len).over(unit) < total`);
* `per_time_group[i]`: rows of one unit in one bucket of time group-by `i`
  (`Bound(by=[bucket], per_group=...)`, from `int_range(len).over(unit, bucket) < k`).

OpenDP then bounds the number of cells one unit touches by min(total, number of public
cells) and each cell's contribution by the smallest per-group bound of any coarser
grouping, e.g. a count grouped by (year, separated) gets per-cell bound 12 from the
year bound.

Pure: standard library only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from privacy.query import TimeBucket
from privacy.schema import Dataset
from privacy.timebuckets import bucket_code, bucket_count
from privacy.validate import DateRange, ValidatedQuery

_REFERENCE_YEARS = (2001, 2002, 2003)
"""Any three consecutive years: every bucket pattern repeats yearly, and a bucket is at
most a year long, so one full bucket of every kind lies inside them."""


@dataclass(frozen=True)
class QueryBounds:
    """The contribution bounds a query's plan enforces (see the module docstring)."""

    total: int
    per_time_group: tuple[int | None, ...]
    """One entry per group-by dimension: the per-bucket bound for a time group-by on the
    dataset's contribution period when it is tighter than `total`, else None."""


def query_bounds(query: ValidatedQuery) -> QueryBounds:
    """The bounds of `query`, from the public schema and the query alone."""
    dataset = query.dataset
    total = dataset.max_rows_per_unit
    for row_filter in query.filters:
        if isinstance(row_filter, DateRange) and row_filter.column == dataset.contribution_period:
            total = min(total, rows_in_range(dataset, row_filter.start, row_filter.end))
    per_group: list[int | None] = []
    for group in query.groups:
        bucket = group.time_bucket
        if bucket is None or group.column != dataset.contribution_period:
            per_group.append(None)
            continue
        rows = rows_per_bucket(dataset, bucket.bucket, bucket.fiscal_year_start_month)
        per_group.append(rows if rows < total else None)
    return QueryBounds(total=total, per_time_group=tuple(per_group))


def rows_in_range(dataset: Dataset, start: date, end: date) -> int:
    """Most rows of one unit with a contribution-period date in [start, end]."""
    bound = dataset.max_rows_per_unit
    for declared in dataset.max_rows_per_period:
        periods = bucket_count(declared.period, start, end)
        bound = min(bound, declared.max_rows * periods)
    return bound


def rows_per_bucket(dataset: Dataset, bucket: TimeBucket, fiscal_year_start_month: int = 10) -> int:
    """Most rows of one unit in any one `bucket` of the contribution period.

    A declared bound of k rows per period P allows k times the number of P periods one
    bucket overlaps (1 when the bucket lies inside a period, 12 months in a year, 2
    calendar years in a fiscal year that starts in October).
    """
    bound = dataset.max_rows_per_unit
    for declared in dataset.max_rows_per_period:
        overlaps = _max_overlaps(bucket, fiscal_year_start_month, declared.period)
        bound = min(bound, declared.max_rows * overlaps)
    return bound


@functools.cache
def _max_overlaps(bucket: TimeBucket, fiscal_year_start_month: int, period: TimeBucket) -> int:
    """The most `period` buckets that one `bucket` overlaps (buckets are whole months)."""
    periods_by_bucket: dict[int, set[int]] = {}
    for year in _REFERENCE_YEARS:
        for month in range(1, 13):
            day = date(year, month, 1)
            code = bucket_code(bucket, day, fiscal_year_start_month)
            periods_by_bucket.setdefault(code, set()).add(bucket_code(period, day))
    return max(len(periods) for periods in periods_by_bucket.values())
