"""Query validation: bad queries are refused with the field named; good ones resolve keys."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from support_data import TEST_SCHEMA as SCHEMA

from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    PrivacyLoss,
    QuerySpec,
    TimeBucket,
)
from privacy.schema import PARTNERSHIP_SCHEMA
from privacy.validate import QueryLimits, QueryValidationError, validate_query

LIMITS = QueryLimits(max_rho_units_per_query=2_000_000)
RANGE_2021 = DateRangeFilter(column="incident_date", start=date(2021, 1, 1), end=date(2021, 12, 31))


def spec(**overrides: Any) -> QuerySpec:
    body: dict[str, Any] = {
        "query_id": uuid.uuid4(),
        "dataset": "incidents",
        "statistic": "count",
        "privacy": PrivacyLoss(rho=Decimal("0.5")),
        "purpose": "annual review",
    }
    body.update(overrides)
    return QuerySpec(**body)


BAD_QUERIES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown dataset", {"dataset": "payroll"}, "dataset", "unknown dataset"),
    ("count with column", {"column": "child_age_months"}, "column", "takes no column"),
    ("sum without column", {"statistic": "sum"}, "column", "needs a numeric column"),
    ("unknown column", {"statistic": "sum", "column": "weight"}, "column", "unknown column"),
    ("sum of categorical", {"statistic": "sum", "column": "sex"}, "column", "numeric"),
    ("identifier column", {"statistic": "sum", "column": "child_id"}, "column", "identifier"),
    (
        "group by numeric",
        {"group_by": (GroupByColumn(column="child_age_months"),)},
        "group_by[0].column",
        "categorical or boolean",
    ),
    (
        "group by unknown column",
        {"group_by": (GroupByColumn(column="shoe_size"),)},
        "group_by[0].column",
        "unknown column",
    ),
    (
        "time bucket without date range",
        {"group_by": (GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),)},
        "group_by[0]",
        "needs a date range",
    ),
    (
        "time bucket with range on another column",
        {
            "group_by": (GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),),
            "filters": (
                DateRangeFilter(column="review_date", start=date(2021, 1, 1), end=date(2022, 1, 1)),
            ),
        },
        "group_by[0]",
        "needs a date range",
    ),
    (
        "time bucket of a non-date",
        {"group_by": (GroupByTime(column="sex", bucket=TimeBucket.YEAR),)},
        "group_by[0].column",
        "needs a date column",
    ),
    (
        "date range start after end",
        {
            "filters": (
                DateRangeFilter(
                    column="incident_date", start=date(2022, 1, 1), end=date(2021, 1, 1)
                ),
            )
        },
        "filters[0].end",
        "before it starts",
    ),
    (
        "date range on non-date",
        {"filters": (DateRangeFilter(column="sex", start=date(2021, 1, 1), end=date(2022, 1, 1)),)},
        "filters[0].column",
        "date column",
    ),
    (
        "unknown filter value",
        {"filters": (InSetFilter(column="manner", values=("homicide", "mystery")),)},
        "filters[0].values",
        "unknown value 'mystery'",
    ),
    (
        "empty filter values",
        {"filters": (InSetFilter(column="manner", values=()),)},
        "filters[0].values",
        "at least one value",
    ),
    (
        "too many filter values",
        {"filters": (InSetFilter(column="manner", values=("homicide",) * 300),)},
        "filters[0].values",
        "at most 256 values",
    ),
    (
        "value set on numeric",
        {"filters": (InSetFilter(column="child_age_months", values=("3",)),)},
        "filters[0].column",
        "categorical or boolean",
    ),
    (
        "bad boolean value",
        {"filters": (InSetFilter(column="sleep_related", values=("yes",)),)},
        "filters[0].values",
        "true/false",
    ),
    (
        "numeric range on categorical",
        {"filters": (NumericRangeFilter(column="sex", low=1),)},
        "filters[0].column",
        "integer or float",
    ),
    (
        "numeric range low above high",
        {"filters": (NumericRangeFilter(column="child_age_months", low=10, high=5),)},
        "filters[0].high",
        "below low",
    ),
    (
        "numeric range without ends",
        {"filters": (NumericRangeFilter(column="child_age_months"),)},
        "filters[0]",
        "low, high or both",
    ),
    (
        "numeric range infinite",
        {"filters": (NumericRangeFilter(column="child_age_months", low=float("inf")),)},
        "filters[0].low",
        "finite",
    ),
    (
        "too many filters",
        {"filters": (NumericRangeFilter(column="child_age_months", low=0),) * 17},
        "filters",
        "at most 16 filters",
    ),
    (
        "rho NaN",
        {"privacy": PrivacyLoss.model_construct(rho=Decimal("NaN"), accuracy=None)},
        "privacy.rho",
        "finite",
    ),
    (
        "rho infinite",
        {"privacy": PrivacyLoss.model_construct(rho=Decimal("Infinity"), accuracy=None)},
        "privacy.rho",
        "finite",
    ),
    ("rho negative", {"privacy": PrivacyLoss(rho=Decimal("-1"))}, "privacy.rho", "positive"),
    ("rho zero", {"privacy": PrivacyLoss(rho=Decimal(0))}, "privacy.rho", "positive"),
    ("rho over cap", {"privacy": PrivacyLoss(rho=Decimal("2.5"))}, "privacy.rho", "cap"),
    (
        "rho astronomically large",
        {"privacy": PrivacyLoss(rho=Decimal("1e30"))},
        "privacy.rho",
        "cap",
    ),
    ("accuracy zero", {"privacy": PrivacyLoss(accuracy=0.0)}, "privacy.accuracy", "positive"),
    (
        "accuracy below one step",
        {"privacy": PrivacyLoss(accuracy=0.5)},
        "privacy.accuracy",
        "at least 1",
    ),
    ("accuracy NaN", {"privacy": PrivacyLoss(accuracy=float("nan"))}, "privacy.accuracy", "finite"),
    ("accuracy inf", {"privacy": PrivacyLoss(accuracy=float("inf"))}, "privacy.accuracy", "finite"),
    (
        "both rho and accuracy",
        {"privacy": PrivacyLoss(rho=Decimal(1), accuracy=3.0)},
        "privacy",
        "exactly one",
    ),
    ("neither rho nor accuracy", {"privacy": PrivacyLoss()}, "privacy", "exactly one"),
    (
        "quantile probability of 1",
        {"statistic": "quantiles", "column": "child_age_months", "quantiles": (0.5, 1.0)},
        "quantiles",
        "strictly between 0 and 1",
    ),
    (
        "quantile probability of 0",
        {"statistic": "quantiles", "column": "child_age_months", "quantiles": (0.0,)},
        "quantiles",
        "strictly between 0 and 1",
    ),
    (
        "quantiles unsorted",
        {"statistic": "quantiles", "column": "child_age_months", "quantiles": (0.9, 0.1)},
        "quantiles",
        "strictly increasing",
    ),
    (
        "quantiles duplicated",
        {"statistic": "quantiles", "column": "child_age_months", "quantiles": (0.5, 0.5)},
        "quantiles",
        "strictly increasing",
    ),
    (
        "quantiles missing",
        {"statistic": "quantiles", "column": "child_age_months"},
        "quantiles",
        "at least one",
    ),
    (
        "quantiles on count",
        {"quantiles": (0.5,)},
        "quantiles",
        "only to the quantiles statistic",
    ),
    (
        "quantiles with accuracy",
        {
            "statistic": "quantiles",
            "column": "child_age_months",
            "quantiles": (0.5,),
            "privacy": PrivacyLoss(accuracy=2.0),
        },
        "privacy.accuracy",
        "give rho",
    ),
    (
        "histogram bins not increasing",
        {"statistic": "histogram", "column": "child_age_months", "bins": (0, 12, 12, 24)},
        "bins",
        "strictly increasing",
    ),
    (
        "histogram single edge",
        {"statistic": "histogram", "column": "child_age_months", "bins": (0,)},
        "bins",
        "at least two edges",
    ),
    ("bins on count", {"bins": (0, 1)}, "bins", "only to the histogram"),
    (
        "too many cells",
        {
            "group_by": (
                GroupByColumn(column="primary_cause"),
                GroupByColumn(column="race_ethnicity"),
                GroupByColumn(column="manner"),
                GroupByTime(column="incident_date", bucket=TimeBucket.MONTH),
            ),
            "filters": (
                DateRangeFilter(
                    column="incident_date", start=date(2000, 1, 1), end=date(2020, 1, 1)
                ),
            ),
        },
        "group_by",
        "more than 10000 cells",
    ),
    ("empty purpose", {"purpose": "   "}, "purpose", "why you ask"),
    ("over-long purpose", {"purpose": "x" * 501}, "purpose", "500"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [case[1:] for case in BAD_QUERIES],
    ids=[case[0] for case in BAD_QUERIES],
)
def test_bad_query_is_refused_with_its_field(
    overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(QueryValidationError) as caught:
        validate_query(spec(**overrides), SCHEMA, LIMITS)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert str(caught.value).startswith(f"{field}: ")


def test_county_grouping_is_refused_when_the_node_declared_no_counties() -> None:
    query = spec(group_by=(GroupByColumn(column="county"),))
    with pytest.raises(QueryValidationError) as caught:
        validate_query(query, PARTNERSHIP_SCHEMA, LIMITS)
    assert caught.value.field == "group_by[0].column"
    assert "declared no public values" in caught.value.message


def test_county_filter_is_refused_when_the_node_declared_no_counties() -> None:
    query = spec(filters=(InSetFilter(column="county", values=("adams",)),))
    with pytest.raises(QueryValidationError) as caught:
        validate_query(query, PARTNERSHIP_SCHEMA, LIMITS)
    assert caught.value.field == "filters[0].column"


def test_cell_limit_comes_from_node_policy() -> None:
    query = spec(group_by=(GroupByColumn(column="primary_cause"),))  # 12 cells
    tight = QueryLimits(max_rho_units_per_query=2_000_000, max_cells=10)
    with pytest.raises(QueryValidationError) as caught:
        validate_query(query, SCHEMA, tight)
    assert caught.value.field == "group_by"
    assert validate_query(query, SCHEMA, LIMITS).cells == 12


def test_valid_query_resolves_public_keys_from_domains_and_its_date_range() -> None:
    query = spec(
        group_by=(
            GroupByColumn(column="county"),
            GroupByTime(column="incident_date", bucket=TimeBucket.QUARTER),
            GroupByColumn(column="sleep_related"),
        ),
        filters=(
            DateRangeFilter(column="incident_date", start=date(2021, 2, 1), end=date(2021, 8, 1)),
        ),
    )
    validated = validate_query(query, SCHEMA, LIMITS)
    assert validated.group_columns == ("county", "incident_date:quarter", "sleep_related")
    assert validated.groups[1].labels == ("2021-Q1", "2021-Q2", "2021-Q3")
    assert validated.groups[2].values == (False, True)
    assert validated.cells == 3 * 3 * 2
    assert len(validated.cell_keys()) == 18
    assert validated.requested_rho_units == 500_000


def test_boolean_filter_accepts_text_flags() -> None:
    query = spec(filters=(InSetFilter(column="sleep_related", values=("true",)),))
    validated = validate_query(query, SCHEMA, LIMITS)
    assert validated.filters[0].values == (True,)  # type: ignore[union-attr]


def test_default_histogram_edges_cover_the_column_bounds() -> None:
    query = spec(statistic="histogram", column="ssit_workload")
    validated = validate_query(query, SCHEMA, LIMITS)
    assert validated.bin_edges == (0.0, 1.0, 2.0, 3.0, 4.0)
    ages = validate_query(spec(statistic="histogram", column="child_age_months"), SCHEMA, LIMITS)
    assert ages.bin_edges[0] == 0.0
    assert ages.bin_edges[-1] == 216.0
    assert len(ages.bin_edges) - 1 <= 10
