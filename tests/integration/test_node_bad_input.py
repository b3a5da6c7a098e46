"""Whatever bytes arrive, the node answers with a meaningful status, never INTERNAL or
UNKNOWN, and charges nothing for a refused request."""

from __future__ import annotations

import math

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_node import NodeWorld, count_spec, ledger_size, node_channel, sign_query

from node.server import RunningNode
from npcs.errors import WireError, field_violation_from_metadata
from npcs.serde_query import query_from_proto, query_to_proto, signed_request_to_proto
from npcs.transport import MAX_MESSAGE_BYTES
from npcs.v1 import node_pb2 as pb

TIMEOUT = 30
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
METHODS = ("Query", "Preview", "Describe")


def call_raw(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    invoke = channel.unary_unary(
        f"/npcs.v1.Node/{method}", request_serializer=None, response_deserializer=None
    )
    try:
        invoke(payload, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def signed_request_bytes(world: NodeWorld, query: pb.Query) -> bytes:
    """A QueryRequest whose signature covers the query (when the query parses at all)."""
    try:
        spec = query_from_proto(query)
    except WireError:
        return pb.QueryRequest(query=query, signed=pb.SignedRequest()).SerializeToString()
    signed = sign_query(spec, world.alice, cost_units=10**9)
    return pb.QueryRequest(query=query, signed=signed_request_to_proto(signed)).SerializeToString()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda q: setattr(q, "statistic", 42), "query.statistic"),
        (lambda q: setattr(q, "rho", "NaN"), "query.rho"),
        (lambda q: setattr(q, "accuracy", math.inf), "query.accuracy"),
        (lambda q: setattr(q, "query_id", "x"), "query.query_id"),
        (lambda q: setattr(q, "dataset", "no_such_dataset"), "query.dataset"),
        (lambda q: setattr(q, "rho", "5"), "query.privacy.rho"),
    ],
)
def test_invalid_query_fields_are_invalid_argument_naming_the_field(
    node_world: NodeWorld, node_server: RunningNode, mutate: object, field: str
) -> None:
    query = query_to_proto(count_spec())
    mutate(query)  # type: ignore[operator]
    payload = signed_request_bytes(node_world, query)
    before = ledger_size(node_world)
    with node_channel(node_world, node_server.port, node_world.alice) as channel:
        invoke = channel.unary_unary(
            "/npcs.v1.Node/Query", request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as raised:
            invoke(payload, timeout=TIMEOUT)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = field_violation_from_metadata(error.trailing_metadata())
    assert violation is not None
    assert violation[0] == field
    assert field in (error.details() or "")
    assert ledger_size(node_world) == before


@pytest.mark.parametrize("method", METHODS)
def test_garbage_bytes_are_invalid_argument(
    node_world: NodeWorld, node_server: RunningNode, method: str
) -> None:
    with node_channel(node_world, node_server.port, node_world.alice) as channel:
        code = call_raw(channel, method, b"\xff\xff\xff\xff\x0f garbage")
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_resource_exhausted(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    query = query_to_proto(count_spec())
    query.purpose = "x" * (MAX_MESSAGE_BYTES + 1024)
    payload = pb.QueryRequest(query=query).SerializeToString()
    before = ledger_size(node_world)
    with node_channel(node_world, node_server.port, node_world.alice) as channel:
        code = call_raw(channel, "Query", payload)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ledger_size(node_world) == before


@given(payload=st.binary(max_size=300), method=st.sampled_from(METHODS))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_bytes_never_get_internal_or_unknown(
    node_world: NodeWorld, node_server: RunningNode, payload: bytes, method: str
) -> None:
    with node_channel(node_world, node_server.port, node_world.alice) as channel:
        code = call_raw(channel, method, payload)
    assert code not in NEVER


queries = st.builds(
    pb.Query,
    query_id=st.one_of(st.uuids().map(str), st.text(max_size=8)),
    dataset=st.sampled_from(["incidents", "reports", "nope", ""]),
    statistic=st.integers(0, 7),
    column=st.sampled_from(["age_months", "county", "incident_date", "child_id", "zzz"]),
    quantiles=st.lists(st.floats(), max_size=3),
    bins=st.lists(st.floats(), max_size=3),
    group_by=st.lists(
        st.one_of(
            st.builds(
                pb.GroupBy,
                column=st.builds(pb.GroupByColumn, column=st.sampled_from(["county", "sex", "x"])),
            ),
            st.builds(
                pb.GroupBy,
                time=st.builds(
                    pb.GroupByTime,
                    column=st.sampled_from(["incident_date", "county"]),
                    bucket=st.integers(0, 6),
                    fiscal_year_start_month=st.integers(0, 14),
                ),
            ),
            st.just(pb.GroupBy()),
        ),
        max_size=2,
    ),
    filters=st.lists(
        st.one_of(
            st.builds(
                pb.Filter,
                in_set=st.builds(
                    pb.InSetFilter,
                    column=st.sampled_from(["county", "sex"]),
                    values=st.lists(st.sampled_from(["c001", "true", "male", "?"]), max_size=3),
                ),
            ),
            st.builds(
                pb.Filter,
                date_range=st.builds(
                    pb.DateRangeFilter,
                    column=st.just("incident_date"),
                    start=st.sampled_from(["2020-01-01", "2021-13-01", "", "soon"]),
                    end=st.sampled_from(["2022-12-31", "", "2019-01-01"]),
                ),
            ),
            st.builds(
                pb.Filter,
                numeric_range=st.builds(
                    pb.NumericRangeFilter,
                    column=st.sampled_from(["age_months", "county"]),
                    low=st.floats(),
                    high=st.floats(),
                ),
            ),
        ),
        max_size=2,
    ),
    rho=st.sampled_from(["0.001", "NaN", "-1", "1e9", "2", "0", "abc", "Infinity"]),
    purpose=st.text(max_size=20),
)


@given(query=queries)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_structured_requests_get_a_meaningful_status(
    node_world: NodeWorld, node_server: RunningNode, query: pb.Query
) -> None:
    """Signed (when parseable) requests across the query space: every outcome is an
    answer or a deliberate refusal."""
    payload = signed_request_bytes(node_world, query)
    with node_channel(node_world, node_server.port, node_world.alice) as channel:
        query_code = call_raw(channel, "Query", payload)
        preview_code = call_raw(
            channel, "Preview", pb.PreviewRequest(query=query).SerializeToString()
        )
    assert query_code not in NEVER
    assert preview_code not in NEVER


def test_request_without_signature_is_invalid_argument(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    payload = pb.QueryRequest(query=query_to_proto(count_spec())).SerializeToString()
    with node_channel(node_world, node_server.port, node_world.alice) as channel:
        assert call_raw(channel, "Query", payload) == grpc.StatusCode.INVALID_ARGUMENT
