"""Properties of validation and planning over queries generated from the schema.

* A query built only from valid parts validates and plans, at a cost within its request.
* Any query at all (valid parts mixed with broken ones) either validates or is refused
  with a QueryValidationError naming a field; never another exception type.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from privacy.plan import plan_query
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.schema import ColumnKind, Dataset
from privacy.text import unsafe_character
from privacy.validate import QueryLimits, QueryValidationError, validate_query

LIMITS = QueryLimits(max_rho_units_per_query=5_000_000)


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One empty-but-typed Parquet file per dataset (planning never reads rows)."""
    folder = tmp_path_factory.mktemp("snapshots")
    paths = {}
    for dataset in SCHEMA.datasets:
        paths[dataset.name] = write_snapshot(folder / f"{dataset.name}.parquet", dataset, [])
    return paths


_T = TypeVar("_T")


def _attempt(action: Callable[[], _T]) -> _T | QueryValidationError:
    """The action's result, or the QueryValidationError it raised (any other error escapes)."""
    try:
        return action()
    except QueryValidationError as error:
        return error


def _columns(dataset: Dataset, *kinds: ColumnKind) -> list[str]:
    return [c.name for c in dataset.columns if c.kind in kinds]


@st.composite
def valid_queries(draw: st.DrawFn) -> QuerySpec:
    dataset = draw(st.sampled_from(SCHEMA.datasets))
    numeric = _columns(dataset, ColumnKind.INTEGER, ColumnKind.FLOAT)
    statistic = draw(st.sampled_from(list(Statistic)))
    column = None if statistic is Statistic.COUNT else draw(st.sampled_from(numeric))
    groupable = [
        n for n in _columns(dataset, ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) if n != column
    ]
    dates = _columns(dataset, ColumnKind.DATE)
    filters: list[Any] = []
    date_column = draw(st.sampled_from(dates))
    start = draw(st.dates(date(2015, 1, 1), date(2024, 12, 31)))
    end = start + timedelta(days=draw(st.integers(0, 900)))
    filters.append(DateRangeFilter(column=date_column, start=start, end=end))
    for name in draw(st.lists(st.sampled_from(groupable), max_size=2, unique=True)):
        spec_column = dataset.column(name)
        domain = spec_column.public_values()
        assert domain is not None
        filters.append(
            InSetFilter(
                column=name,
                values=tuple(
                    draw(st.lists(st.sampled_from(domain), min_size=1, max_size=3, unique=True))
                ),
            )
        )
    if draw(st.booleans()):
        bounded = dataset.column(draw(st.sampled_from(numeric)))
        assert bounded.lower is not None
        filters.append(NumericRangeFilter(column=bounded.name, low=bounded.lower))
    group_by: list[Any] = [
        GroupByColumn(column=name)
        for name in draw(st.lists(st.sampled_from(groupable), max_size=2, unique=True))
    ]
    if draw(st.booleans()):
        group_by.append(
            GroupByTime(
                column=date_column,
                bucket=draw(st.sampled_from(list(TimeBucket))),
                fiscal_year_start_month=draw(st.integers(1, 12)),
            )
        )
    quantiles: tuple[float, ...] = ()
    if statistic is Statistic.QUANTILES:
        quantiles = tuple(
            sorted(draw(st.sets(st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9]), min_size=1)))
        )
    if statistic is not Statistic.QUANTILES and draw(st.booleans()):
        privacy = PrivacyLoss(accuracy=draw(st.floats(1_000, 1e6)))
    else:
        privacy = PrivacyLoss(rho=Decimal(draw(st.integers(1, 5_000_000))).scaleb(-6))
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset=dataset.name,
        statistic=statistic,
        column=column,
        quantiles=quantiles,
        group_by=tuple(group_by),
        filters=tuple(filters),
        privacy=privacy,
        # Valid purposes: one line of text without control or text-direction characters.
        purpose=draw(
            st.text(min_size=1, max_size=40).filter(
                lambda text: text.strip() != "" and unsafe_character(text) is None
            )
        ),
    )


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=valid_queries())
def test_valid_queries_validate_and_plan_within_their_budget(
    spec: QuerySpec, snapshots: dict[str, Path]
) -> None:
    validated = _attempt(lambda: validate_query(spec, SCHEMA, LIMITS))
    if isinstance(validated, QueryValidationError):
        # the only refusal a valid-by-construction query may meet: too many cells
        assert validated.field == "group_by"
        assert "cells" in validated.message
        return
    plan = _attempt(lambda: plan_query(validated, SCHEMA, snapshots[spec.dataset]))
    if isinstance(plan, QueryValidationError):
        # a tight accuracy target on a wide column may cost more than the per-query cap
        assert plan.field == "privacy.accuracy"
        assert validated.accuracy is not None
        return
    assert 0 < plan.cost_units <= LIMITS.max_rho_units_per_query
    if validated.requested_rho_units is not None:
        assert plan.cost_units <= validated.requested_rho_units
    assert plan.expected


_ANY_NAME = st.sampled_from(
    [
        "county",
        "sex",
        "child_age_months",
        "incident_date",
        "child_id",
        "month",
        "role",
        "tenure_months",
        "nope",
        "report_date",
        "sleep_related",
        "psych_safety",
        "",
    ]
)
_ANY_VALUE = st.one_of(st.booleans(), st.sampled_from(["adams", "female", "true", "x", ""]))
_ANY_FLOAT = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
_ANY_FILTER = st.one_of(
    st.builds(InSetFilter, column=_ANY_NAME, values=st.lists(_ANY_VALUE, max_size=4).map(tuple)),
    st.builds(DateRangeFilter, column=_ANY_NAME, start=st.dates(), end=st.dates()),
    st.builds(NumericRangeFilter, column=_ANY_NAME, low=_ANY_FLOAT, high=_ANY_FLOAT),
)
_ANY_GROUP = st.one_of(
    st.builds(GroupByColumn, column=_ANY_NAME),
    st.builds(
        GroupByTime,
        column=_ANY_NAME,
        bucket=st.sampled_from(list(TimeBucket)),
        fiscal_year_start_month=st.integers(1, 12),
    ),
)
_ANY_PRIVACY = st.builds(
    PrivacyLoss,
    rho=st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)),
    accuracy=_ANY_FLOAT,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dataset=st.sampled_from(["incidents", "reports", "workforce", "safety_culture", "other"]),
    statistic=st.sampled_from(list(Statistic)),
    column=st.one_of(st.none(), _ANY_NAME),
    quantiles=st.lists(st.floats(allow_nan=True), max_size=3).map(tuple),
    bins=st.lists(st.floats(-10, 300), max_size=4).map(tuple),
    group_by=st.lists(_ANY_GROUP, max_size=3).map(tuple),
    filters=st.lists(_ANY_FILTER, max_size=3).map(tuple),
    privacy=_ANY_PRIVACY,
    purpose=st.text(max_size=30),
)
def test_any_query_validates_or_is_refused_with_a_named_field(
    snapshots: dict[str, Path], **fields: Any
) -> None:
    spec = QuerySpec(query_id=uuid.uuid4(), **fields)
    validated = _attempt(lambda: validate_query(spec, SCHEMA, LIMITS))
    if isinstance(validated, QueryValidationError):
        root = validated.field.split(".")[0].split("[")[0]
        assert root in QuerySpec.model_fields
        assert validated.message
        return
    plan = _attempt(lambda: plan_query(validated, SCHEMA, snapshots[spec.dataset]))
    if isinstance(plan, QueryValidationError):
        assert plan.field == "privacy.accuracy"
        return
    assert 0 < plan.cost_units <= LIMITS.max_rho_units_per_query
