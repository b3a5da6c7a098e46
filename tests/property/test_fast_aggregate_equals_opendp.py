"""The fast route's exact aggregate equals OpenDP's transformation, cell by cell.

On generated `reports` snapshots (per-month, per-year and total contribution bounds),
truncated at ingest's rule and verified as ingest records them (node/bounds_record.py),
with missing values, values at the bounds, empty cells, filters and derived time keys,
for counts, sums, centred means, histograms and quantiles:

* the full plan's identifier truncation keeps every row (the premise of the fast route);
* `privacy.fast_release.exact_aggregate` equals, in every public cell, what OpenDP's own
  transformations compute from that cell's rows: `make_count`, `make_clamp >> then_sum`
  (the plan's clipping bounds) on the plan's null fill, and
  `make_quantile_score_candidates`.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_data import TEST_COUNTIES, write_snapshot
from support_data import TEST_SCHEMA as SCHEMA

from node.bounds_record import verified_bounds
from node.truncation import truncate_to_bounds
from privacy.centring import centred_bounds, mean_centre
from privacy.fast_release import exact_aggregate
from privacy.opendp_setup import opendp
from privacy.plan import key_frame, keyed_rows, quantile_candidates, sum_bounds, truncated_rows
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.validate import QueryLimits, ValidatedQuery, validate_query

DATASET = SCHEMA.dataset("reports")
AGE = DATASET.column("child_age_months")
DISPOSITIONS = DATASET.column("disposition").domain or ()
FIRST_DAY = date(2019, 11, 1)
LIMITS = QueryLimits(max_rho_units_per_query=5_000_000)

ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "child_id": st.sampled_from([f"child{index}" for index in range(8)]),
            "report_date": st.integers(0, 800).map(lambda days: FIRST_DAY + timedelta(days)),
            "county": st.sampled_from(TEST_COUNTIES),
            "disposition": st.sampled_from(DISPOSITIONS[:3]),
            # missing values, values at and between the public bounds [0, 215] (ingest
            # rejects values outside them, and the manifest records that)
            "child_age_months": st.one_of(st.none(), st.integers(0, 215), st.integers(0, 4)),
        }
    ),
    max_size=60,
)


def _spec(statistic: Statistic, **fields: Any) -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="reports",
        statistic=statistic,
        privacy=PrivacyLoss(rho=Decimal("0.5")),
        purpose="property test",
        **fields,
    )


BY_YEAR = GroupByTime(column="report_date", bucket=TimeBucket.YEAR)
BY_MONTH = GroupByTime(column="report_date", bucket=TimeBucket.MONTH)
BY_COUNTY = GroupByColumn(column="county")
SHORT_RANGE = DateRangeFilter(column="report_date", start=date(2020, 1, 1), end=date(2020, 3, 31))
WHOLE_RANGE = DateRangeFilter(column="report_date", start=date(2019, 6, 1), end=date(2022, 1, 31))
SPECS = (
    lambda: _spec(Statistic.COUNT, group_by=(BY_YEAR, BY_COUNTY), filters=(WHOLE_RANGE,)),
    lambda: _spec(Statistic.COUNT, group_by=(BY_MONTH,), filters=(SHORT_RANGE,)),
    lambda: _spec(
        Statistic.COUNT,
        group_by=(GroupByColumn(column="disposition"),),
        filters=(InSetFilter(column="county", values=TEST_COUNTIES[:2]),),
    ),
    lambda: _spec(Statistic.SUM, column="child_age_months", group_by=(BY_COUNTY,)),
    lambda: _spec(
        Statistic.MEAN, column="child_age_months", group_by=(BY_YEAR,), filters=(WHOLE_RANGE,)
    ),
    lambda: _spec(Statistic.MEAN, column="child_age_months", filters=(SHORT_RANGE,)),
    lambda: _spec(Statistic.HISTOGRAM, column="child_age_months", bins=(0, 12, 60, 215)),
    lambda: _spec(
        Statistic.QUANTILES,
        column="child_age_months",
        quantiles=(0.25, 0.5, 0.75),
        group_by=(BY_COUNTY,),
    ),
    lambda: _spec(Statistic.QUANTILES, column="child_age_months", quantiles=(0.5,)),
)


def _ingested(rows: list[dict[str, Any]], folder: Path) -> pl.LazyFrame:
    """The rows after ingest's truncation, as a scanned snapshot."""
    written = write_snapshot(folder / "raw.parquet", DATASET, rows)
    numbered = pl.read_parquet(written).with_row_index("__row", offset=1)
    kept, _cut = truncate_to_bounds(DATASET, numbered, "__row")
    kept = kept.drop("__row")
    assert verified_bounds(DATASET, kept) is not None
    path = folder / "snapshot.parquet"
    kept.write_parquet(path)
    return pl.scan_parquet(path)


def _cell_rows(query: ValidatedQuery, data: pl.LazyFrame) -> dict[tuple[Any, ...], pl.DataFrame]:
    """The rows of each public cell after the full plan's filter, keys and truncation."""
    rows, key_columns = keyed_rows(query, data)
    kept = truncated_rows(query, rows).collect()
    assert kept.height == rows.collect().height, "truncation cut a row of a bounded snapshot"
    cells = key_frame(query, key_columns).collect() if key_columns else pl.DataFrame({"k": [0]})
    if not key_columns:
        return {(0,): kept}
    empty = kept.clear()
    parts = kept.partition_by(key_columns, as_dict=True) if kept.height else {}
    return {key: parts.get(key, empty) for key in cells.iter_rows()}


def _opendp_count(values: list[Any]) -> int:
    dp = opendp()
    count = dp.t.make_count(dp.vector_domain(dp.atom_domain(T="i64")), dp.symmetric_distance())
    return int(count(values))


def _opendp_sum(values: list[int], bounds: tuple[int | float, int | float]) -> int:
    dp = opendp()
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.symmetric_distance()
    clamped_sum = space >> dp.t.then_clamp((int(bounds[0]), int(bounds[1]))) >> dp.t.then_sum()
    return int(clamped_sum(values))


def _opendp_scores(values: list[int], probability: float) -> list[int]:
    dp = opendp()
    candidates = [int(value) for value in quantile_candidates(AGE)]
    score = dp.t.make_quantile_score_candidates(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.symmetric_distance(), candidates, probability
    )
    return [int(value) for value in score(values)]


def _expected(query: ValidatedQuery, rows: pl.DataFrame) -> dict[str, Any]:
    """What OpenDP's transformations compute from one cell's rows (the plan's fill first)."""
    statistic = query.statistic
    ages = rows["child_age_months"].to_list()
    if statistic in (Statistic.COUNT, Statistic.HISTOGRAM):
        return {"__count": _opendp_count([0] * rows.height)}
    if statistic is Statistic.SUM:
        return {"__sum": _opendp_sum([0 if a is None else a for a in ages], sum_bounds(AGE))}
    if statistic is Statistic.MEAN:
        centre = int(mean_centre(AGE))
        centred = [0 if age is None else age - centre for age in ages]
        known = [age for age in ages if age is not None]
        return {
            "__sum": _opendp_sum(centred, centred_bounds(AGE)),
            "__count": _opendp_count(known),
        }
    return {
        f"__q{index}": _opendp_scores(ages, probability)
        for index, probability in enumerate(query.spec.quantiles)
    }


@pytest.mark.parametrize("make_spec", SPECS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=ROWS)
def test_fast_aggregate_equals_opendp_transformation(
    rows: list[dict[str, Any]], make_spec: Any, tmp_path: Path
) -> None:
    query = validate_query(make_spec(), SCHEMA, LIMITS)
    data = _ingested(rows, tmp_path)
    fast = exact_aggregate(query, data)
    _rows, key_columns = keyed_rows(query, data)
    by_cell = {
        tuple(row[name] for name in key_columns) if key_columns else (0,): row
        for row in fast.iter_rows(named=True)
    }
    expected_cells = _cell_rows(query, data)
    assert set(by_cell) == set(expected_cells)
    for key, cell_rows in expected_cells.items():
        for column, value in _expected(query, cell_rows).items():
            assert by_cell[key][column] == value, (key, column)
