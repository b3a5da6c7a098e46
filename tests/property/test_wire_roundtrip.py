"""Wire conversion: every QuerySpec survives protobuf encoding unchanged, and bad
messages are refused with a WireError naming the field (never another exception)."""

from __future__ import annotations

import math
import string
from datetime import date
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.messages import BudgetShortfall
from npcs.errors import WireError, budget_metadata, budget_shortfall_from_metadata
from npcs.serde_query import normalize_spec, query_from_proto, query_to_proto
from npcs.v1 import node_pb2 as pb
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

names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
in_set_values = st.one_of(
    st.booleans(), st.text(max_size=10).filter(lambda text: text not in {"true", "false"})
)
group_bys = st.one_of(
    st.builds(GroupByColumn, column=names),
    st.builds(
        GroupByTime,
        column=names,
        bucket=st.sampled_from(TimeBucket),
        fiscal_year_start_month=st.integers(1, 12),
    ),
)
filters = st.one_of(
    st.builds(InSetFilter, column=names, values=st.tuples(in_set_values, in_set_values)),
    st.builds(DateRangeFilter, column=names, start=st.dates(), end=st.dates()),
    st.builds(
        NumericRangeFilter,
        column=names,
        low=st.none() | finite,
        high=st.none() | finite,
    ),
)
rhos = st.decimals(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False, places=9)
privacy_losses = st.one_of(
    st.builds(PrivacyLoss, rho=rhos),
    st.builds(PrivacyLoss, accuracy=st.floats(min_value=1e-6, max_value=1e9)),
)
specs = st.builds(
    QuerySpec,
    query_id=st.uuids(),
    dataset=names,
    statistic=st.sampled_from(Statistic),
    column=st.none() | names,
    quantiles=st.lists(finite, max_size=4).map(tuple),
    bins=st.lists(finite, max_size=4).map(tuple),
    items=st.lists(names, max_size=3).map(tuple),
    group_by=st.lists(group_bys, max_size=3).map(tuple),
    filters=st.lists(filters, max_size=3).map(tuple),
    privacy=privacy_losses,
    purpose=st.text(max_size=40),
)


@given(specs)
@settings(max_examples=300)
def test_query_spec_survives_proto_bytes_unchanged(spec: QuerySpec) -> None:
    encoded = query_to_proto(spec).SerializeToString()
    decoded = query_from_proto(pb.Query.FromString(encoded))
    assert decoded == spec
    assert decoded.canonical_bytes() == spec.canonical_bytes()


@given(specs)
@settings(max_examples=100)
def test_normalize_spec_is_idempotent(spec: QuerySpec) -> None:
    once = normalize_spec(spec)
    assert normalize_spec(once) == once


def _count_query(**overrides: object) -> pb.Query:
    message = pb.Query(
        query_id="6f1c1f3a-8d3e-4b8e-9a43-0c4b0f6f9a11",
        dataset="incidents",
        statistic=pb.STATISTIC_COUNT,
        rho="0.1",
        purpose="test",
    )
    for name, value in overrides.items():
        setattr(message, name, value)
    return message


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"query_id": "not-a-uuid"}, "query.query_id"),
        ({"statistic": 99}, "query.statistic"),
        ({"statistic": 0}, "query.statistic"),
        ({"rho": "NaN"}, "query.rho"),
        ({"rho": "inf"}, "query.rho"),
        ({"rho": "-1"}, "query.rho"),
        ({"rho": "lots"}, "query.rho"),
        ({"rho": "1e999999"}, "query.rho"),
        ({"accuracy": math.nan}, "query.accuracy"),
        ({"accuracy": -2.0}, "query.accuracy"),
    ],
)
def test_bad_scalar_fields_are_refused_by_name(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(WireError) as caught:
        query_from_proto(_count_query(**overrides))
    assert caught.value.field == field


def test_missing_privacy_and_empty_oneofs_are_refused_by_name() -> None:
    message = _count_query()
    message.ClearField("rho")
    with pytest.raises(WireError, match="rho or a target accuracy"):
        query_from_proto(message)

    message = _count_query()
    message.filters.add()  # a Filter with no kind set
    with pytest.raises(WireError) as caught:
        query_from_proto(message)
    assert caught.value.field == "query.filters[0]"

    message = _count_query()
    message.filters.add().date_range.CopyFrom(pb.DateRangeFilter(column="d", start="2024-01-01"))
    with pytest.raises(WireError, match="both ends") as caught:
        query_from_proto(message)
    assert caught.value.field == "query.filters[0].date_range.end"

    message = _count_query()
    message.group_by.add().time.CopyFrom(pb.GroupByTime(column="d", bucket=7))  # type: ignore[arg-type]
    with pytest.raises(WireError) as caught:
        query_from_proto(message)
    assert caught.value.field == "query.group_by[0].time.bucket"


def test_boolean_in_set_values_travel_as_true_false_text() -> None:
    spec = QuerySpec(
        query_id=UUID(int=1),
        dataset="incidents",
        statistic=Statistic.COUNT,
        filters=(InSetFilter(column="open_case", values=(True, False, "x")),),
        privacy=PrivacyLoss(rho=Decimal("0.5")),
        purpose="p",
    )
    message = query_to_proto(spec)
    assert list(message.filters[0].in_set.values) == ["true", "false", "x"]
    assert query_from_proto(message) == spec


def test_unset_fiscal_year_start_month_means_october() -> None:
    message = _count_query()
    message.group_by.add().time.CopyFrom(
        pb.GroupByTime(column="incident_date", bucket=pb.TIME_BUCKET_FISCAL_YEAR)
    )
    message.filters.add().date_range.CopyFrom(
        pb.DateRangeFilter(column="incident_date", start="2020-01-01", end="2023-12-31")
    )
    spec = query_from_proto(message)
    group = spec.group_by[0]
    assert isinstance(group, GroupByTime)
    assert group.fiscal_year_start_month == 10
    assert spec.filters[0] == DateRangeFilter(
        column="incident_date", start=date(2020, 1, 1), end=date(2023, 12, 31)
    )


# A valid query's bytes with random bytes appended (protobuf merges them as more fields):
# unlike random bytes alone, these often parse, so the accepted branch below runs too.
valid_query_then_noise = st.tuples(specs, st.binary(max_size=40)).map(
    lambda pair: query_to_proto(pair[0]).SerializeToString() + pair[1]
)


@given(st.one_of(st.binary(max_size=200), valid_query_then_noise))
@settings(max_examples=300)
def test_arbitrary_bytes_either_parse_or_raise_wire_error(data: bytes) -> None:
    from google.protobuf.message import DecodeError

    try:
        message = pb.Query.FromString(data)
    except DecodeError:
        return
    try:
        spec = query_from_proto(message)
    except WireError as error:
        field = error.field
    else:
        # Whatever the parser accepts is a query that survives encoding unchanged.
        assert isinstance(spec, QuerySpec)
        encoded = query_to_proto(spec).SerializeToString()
        assert query_from_proto(pb.Query.FromString(encoded)) == spec
        return
    assert field.startswith("query")


def test_budget_shortfall_round_trips_through_metadata() -> None:
    shortfall = BudgetShortfall(
        dataset="incidents", scope="dataset", requested_units=500_000, remaining_units=1
    )
    metadata = budget_metadata(shortfall)
    assert budget_shortfall_from_metadata(metadata) == shortfall
    assert budget_shortfall_from_metadata((("other", b""),)) is None
