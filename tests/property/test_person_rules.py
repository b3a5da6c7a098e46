"""The per-person rules from one narrow sort equal the whole-table rules they replace.

`node.person_rules.apply_person_rules` sorts only (position, file row, person, date,
disposition, given recurrence_12m) once and maps the results back by position. On
generated valid `reports` rows (many children, ties on one day, runs past the month,
year and total bounds, a given recurrence_12m that is right, wrong or missing, file rows
with gaps), it keeps exactly the rows `truncate_to_bounds` keeps, in file order, with the
cut lines it makes; each kept row's recurrence_12m is what a plain per-child reading of
the CFSR rule gives (and what `node.recurrence.recurrence_12m` gives on the kept rows);
a wrong given value rejects its row; and its bounds verdict equals a group-by count.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_data import TEST_SCHEMA as SCHEMA

from node.bounds_record import within_contribution_bounds
from node.person_rules import apply_person_rules
from node.recurrence import recurrence_12m
from node.truncation import period_code, truncate_to_bounds
from privacy.query import TimeBucket
from privacy.schema import Dataset

REPORTS = SCHEMA.dataset("reports")
ROW = "__row"
FIRST_DAY = date(2019, 12, 20)
DISPOSITIONS = ("substantiated", "indicated", "unsubstantiated", "other")


@st.composite
def reports(draw: st.DrawFn) -> pl.DataFrame:
    size = draw(st.integers(0, 200))
    children = draw(st.integers(1, 25))
    span = draw(st.sampled_from([2, 60, 500, 1200]))
    rows = sorted(draw(st.permutations(range(1, 2 * size + 2)))[:size])  # file order, gaps
    given = draw(st.sampled_from(["absent", "some", "none"]))
    frame = pl.DataFrame(
        {
            ROW: rows,
            "child_id": [f"c{draw(st.integers(0, children))}" for _ in range(size)],
            "report_date": [FIRST_DAY + timedelta(draw(st.integers(0, span))) for _ in range(size)],
            "disposition": [draw(st.sampled_from(DISPOSITIONS)) for _ in range(size)],
            "county": ["c001"] * size,
        },
        schema={
            ROW: pl.UInt32,
            "child_id": pl.String,
            "report_date": pl.Date,
            "disposition": pl.String,
            "county": pl.String,
        },
    )
    if given == "absent":
        return frame
    flags = [draw(st.sampled_from([None, True, False])) for _ in range(size)]
    return frame.with_columns(recurrence_12m=pl.Series(flags, dtype=pl.Boolean))


def one_year_later(day: date) -> date:
    """polars' `offset_by("12mo")`: the same day a year on, or the month's last day."""
    last = calendar.monthrange(day.year + 1, day.month)[1]
    return date(day.year + 1, day.month, min(day.day, last))


def recurrence_by_reading(frame: pl.DataFrame) -> list[bool]:
    """CFSR recurrence read plainly: a victim report within 12 months after the child's
    latest victim report on an earlier day."""
    victim_days: dict[str, list[date]] = defaultdict(list)
    for child, day, disposition in frame.select("child_id", "report_date", "disposition").rows():
        if disposition in DISPOSITIONS[:2]:
            victim_days[child].append(day)
    flags = []
    for child, day, disposition in frame.select("child_id", "report_date", "disposition").rows():
        earlier = [d for d in victim_days[child] if d < day]
        flags.append(
            disposition in DISPOSITIONS[:2]
            and bool(earlier)
            and day <= one_year_later(max(earlier))
        )
    return flags


def within_by_group_by(dataset: Dataset, frame: pl.DataFrame) -> bool:
    unit, period = dataset.privacy_unit, dataset.contribution_period
    assert period is not None
    counts = [frame.group_by(unit).len()]
    for bound in dataset.max_rows_per_period:
        code = period_code(pl.col(period), bound.period).alias("__period")
        counts.append(frame.group_by(pl.col(unit), code).len())
    limits = [dataset.max_rows_per_unit, *(b.max_rows for b in dataset.max_rows_per_period)]
    return all(
        (count["len"].max() or 0) <= limit  # type: ignore[operator]
        for count, limit in zip(counts, limits, strict=True)
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=reports())
def test_one_narrow_sort_equals_the_whole_table_rules(frame: pl.DataFrame) -> None:
    person = apply_person_rules(REPORTS, frame, ROW, "row")

    truncated, cut = truncate_to_bounds(REPORTS, frame, ROW)
    assert sorted(person.cut.rows()) == sorted(cut.rows())
    derived = recurrence_by_reading(truncated)
    assert derived == recurrence_12m(truncated).to_list()
    given = (
        truncated.get_column("recurrence_12m").to_list()
        if "recurrence_12m" in truncated.columns
        else [None] * truncated.height
    )
    wrong = [g is not None and g != d for g, d in zip(given, derived, strict=True)]
    expected = truncated.with_columns(recurrence_12m=pl.Series(derived, dtype=pl.Boolean)).filter(
        ~pl.Series(wrong, dtype=pl.Boolean)
    )
    assert person.kept.equals(expected.select(person.kept.columns))
    assert sorted(person.inconsistent.get_column("row").to_list()) == [
        row for row, bad in zip(truncated[ROW].to_list(), wrong, strict=True) if bad
    ]
    assert person.within_bounds
    assert within_by_group_by(REPORTS, person.kept)


@settings(max_examples=200, deadline=None)
@given(frame=reports(), shuffle=st.randoms(use_true_random=False))
def test_bounds_counted_as_runs_equal_a_group_by_count(
    frame: pl.DataFrame, shuffle: st.SearchStrategy[object]
) -> None:
    """In any row order, sorted or not, and over the bounds or within them."""
    order = list(range(frame.height))
    shuffle.shuffle(order)  # type: ignore[attr-defined]
    for rows in (frame, frame[order], frame.sort("child_id", "report_date")):
        assert within_contribution_bounds(REPORTS, rows) == within_by_group_by(REPORTS, rows)


def test_a_child_over_every_bound_is_cut_and_then_within() -> None:
    days = [FIRST_DAY + timedelta(days) for days in (0, 0, 0, 3, 40, 41, 80, 120, 200, 300, 301)]
    frame = pl.DataFrame(
        {
            ROW: list(range(1, len(days) + 1)),
            "child_id": ["c1"] * len(days),
            "report_date": days,
            "disposition": ["substantiated"] * len(days),
        },
        schema_overrides={ROW: pl.UInt32},
    )
    assert not within_contribution_bounds(REPORTS, frame)
    person = apply_person_rules(REPORTS, frame, ROW, "row")
    assert person.cut.height > 0
    assert person.within_bounds
    bound = {b.period: b.max_rows for b in REPORTS.max_rows_per_period}[TimeBucket.MONTH]
    assert person.kept.filter(pl.col("report_date") == FIRST_DAY).height == bound
