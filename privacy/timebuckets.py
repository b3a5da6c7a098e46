"""Time buckets of a date column: integer codes and public labels.

A time-bucket group-by releases one cell per bucket of the query's own date range, so
the keys are public: they come from the request, never from the data. Each bucket has
an integer code (what the node computes per row with polars, see privacy/plan.py) and a
label (what the release shows):

| bucket      | code                          | label      |
|-------------|-------------------------------|------------|
| year        | year                          | "2021"     |
| fiscal_year | year it ends in               | "FY2022"   |
| quarter     | year * 4 + (quarter - 1)      | "2021-Q3"  |
| month       | year * 12 + (month - 1)       | "2021-07"  |

A fiscal year starting in month S (S > 1) runs from S of year Y-1 to S-1 of year Y and
is labelled Y (the US federal FY2022 runs 2021-10-01 .. 2022-09-30). With S = 1 the
fiscal year is the calendar year.

Pure: standard library only (the coordinator uses it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from privacy.query import TimeBucket


@dataclass(frozen=True)
class Bucket:
    """One time bucket: the code computed per row and its public label."""

    code: int
    label: str


def bucket_code(bucket: TimeBucket, day: date, fiscal_year_start_month: int = 10) -> int:
    """The code of the bucket that contains `day`."""
    if bucket is TimeBucket.YEAR:
        return day.year
    if bucket is TimeBucket.FISCAL_YEAR:
        starts_next_year = fiscal_year_start_month > 1 and day.month >= fiscal_year_start_month
        return day.year + 1 if starts_next_year else day.year
    if bucket is TimeBucket.QUARTER:
        return day.year * 4 + (day.month - 1) // 3
    return day.year * 12 + (day.month - 1)


def bucket_label(bucket: TimeBucket, code: int) -> str:
    """The public label of a bucket code."""
    if bucket is TimeBucket.YEAR:
        return f"{code:04d}"
    if bucket is TimeBucket.FISCAL_YEAR:
        return f"FY{code:04d}"
    if bucket is TimeBucket.QUARTER:
        year, quarter_index = divmod(code, 4)
        return f"{year:04d}-Q{quarter_index + 1}"
    year, month_index = divmod(code, 12)
    return f"{year:04d}-{month_index + 1:02d}"


def bucket_count(
    bucket: TimeBucket, start: date, end: date, fiscal_year_start_month: int = 10
) -> int:
    """How many buckets the range [start, end] touches (0 when start > end)."""
    if start > end:
        return 0
    first = bucket_code(bucket, start, fiscal_year_start_month)
    last = bucket_code(bucket, end, fiscal_year_start_month)
    return last - first + 1


def buckets_between(
    bucket: TimeBucket, start: date, end: date, fiscal_year_start_month: int = 10
) -> tuple[Bucket, ...]:
    """Every bucket that overlaps [start, end], in time order: the public group keys."""
    if start > end:
        return ()
    first = bucket_code(bucket, start, fiscal_year_start_month)
    last = bucket_code(bucket, end, fiscal_year_start_month)
    return tuple(Bucket(code, bucket_label(bucket, code)) for code in range(first, last + 1))
