"""Ingest's sort-based truncation keeps exactly the rows the window rule keeps.

`node.truncation.truncate_to_bounds` ranks each person's rows by one sort on
(person, date, file row). The reference here is the earlier implementation, kept only
as this test's oracle: one `int_range(len).over(person, period)` window per declared
period bound, in the schema's order, then one over the person for the total bound,
on rows ordered by (date, file row). On generated data (many persons, ties on dates,
periods across month, quarter and year boundaries, missing values in a nullable column
and missing ids, which both rules treat as one person, file rows out of order, any
declarable bounds), both keep the same rows in the same order and cut the same rows for
the same reason.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_data import TEST_SCHEMA as SCHEMA

from node.truncation import TRUNCATION_REASON, period_code, truncate_to_bounds
from privacy.query import TimeBucket
from privacy.schema import Dataset

REPORTS = SCHEMA.dataset("reports")
UNIT = REPORTS.privacy_unit
PERIOD = "report_date"
ROW = "__row"
FIRST_DAY = date(2019, 11, 20)
PERIODS = (TimeBucket.MONTH, TimeBucket.QUARTER, TimeBucket.YEAR)


def window_truncation(dataset: Dataset, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The reference rule: hash windows over the person (and period), as before."""
    unit = dataset.privacy_unit
    order = [dataset.contribution_period, ROW] if dataset.contribution_period else [ROW]
    kept = frame.sort(order)
    cut: list[pl.DataFrame] = []
    for bound in dataset.max_rows_per_period:
        assert dataset.contribution_period is not None
        bucket = period_code(pl.col(dataset.contribution_period), bound.period)
        rank = pl.int_range(pl.len()).over(unit, bucket)
        cut.append(kept.filter(rank >= bound.max_rows).select(ROW, pl.lit(str(bound.period))))
        kept = kept.filter(rank < bound.max_rows)
    rank = pl.int_range(pl.len()).over(unit)
    cut.append(kept.filter(rank >= dataset.max_rows_per_unit).select(ROW, pl.lit("total")))
    return kept.filter(rank < dataset.max_rows_per_unit).sort(ROW), pl.concat(cut)


def with_bounds(total: int, bounds: list[tuple[TimeBucket, int]]) -> Dataset:
    return Dataset.model_validate(
        {
            **REPORTS.model_dump(),
            "max_rows_per_unit": total,
            "max_rows_per_period": [{"period": p, "max_rows": m} for p, m in bounds],
        }
    )


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    total = draw(st.integers(1, 9))
    periods = draw(st.permutations(PERIODS).map(lambda order: order[: draw(st.integers(0, 3))]))
    return with_bounds(total, [(period, draw(st.integers(1, total))) for period in periods])


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    people = draw(st.integers(1, 40))
    size = draw(st.integers(0, 300))
    span = draw(st.sampled_from([3, 40, 400, 1500]))  # ties on one day up to years apart
    ids = [None, *(f"c{person}" for person in range(people))]  # no schema forbids a null id
    rows = draw(st.permutations(range(1, 2 * size + 2)))[:size]  # gaps, out of file order
    return pl.DataFrame(
        {
            ROW: rows,
            UNIT: [draw(st.sampled_from(ids)) for _ in range(size)],
            PERIOD: [FIRST_DAY + timedelta(draw(st.integers(0, span))) for _ in range(size)],
            "family_id": [draw(st.sampled_from([None, "f1", "f2"])) for _ in range(size)],
        },
        schema={ROW: pl.UInt32, UNIT: pl.String, PERIOD: pl.Date, "family_id": pl.String},
    )


def assert_same_truncation(dataset: Dataset, frame: pl.DataFrame) -> None:
    kept, cut = truncate_to_bounds(dataset, frame, ROW)
    reference_kept, reference_cut = window_truncation(dataset, frame)
    assert kept.equals(reference_kept)
    assert kept.columns == frame.columns
    assert sorted(cut.get_column("row").to_list()) == sorted(reference_cut[ROW].to_list())
    bound_of_row = dict(zip(reference_cut[ROW], reference_cut["literal"], strict=True))
    for row, column, reason in cut.iter_rows():
        assert column == UNIT
        assert reason.startswith(TRUNCATION_REASON)
        bound = bound_of_row[row]
        assert (f"in one {bound.lower()};" in reason) == (bound != "total"), (row, reason)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset=datasets(), frame=frames())
def test_sort_truncation_keeps_the_window_rules_rows(dataset: Dataset, frame: pl.DataFrame) -> None:
    assert_same_truncation(dataset, frame)


def test_many_persons_with_every_bound() -> None:
    """A larger table: 20,000 rows of 3,000 persons, month, quarter and year bounds."""
    generator = random.Random(12)
    size = 20_000
    frame = pl.DataFrame(
        {
            ROW: generator.sample(range(1, 3 * size), size),
            UNIT: [f"child{generator.randrange(3000)}" for _ in range(size)],
            PERIOD: [FIRST_DAY + timedelta(generator.randrange(700)) for _ in range(size)],
            "family_id": [generator.choice([None, "f"]) for _ in range(size)],
        },
        schema={ROW: pl.UInt32, UNIT: pl.String, PERIOD: pl.Date, "family_id": pl.String},
    )
    dataset = with_bounds(6, [(TimeBucket.MONTH, 1), (TimeBucket.YEAR, 4), (TimeBucket.QUARTER, 2)])
    _kept, cut = truncate_to_bounds(dataset, frame, ROW)
    assert cut.height < size // 2
    for period in ("month", "quarter", "year"):  # every bound bites
        assert cut.filter(pl.col("reason").str.contains(f"in one {period};")).height > 0
    assert cut.filter(~pl.col("reason").str.contains("in one")).height > 0
    assert_same_truncation(dataset, frame)
    assert_same_truncation(REPORTS, frame)
