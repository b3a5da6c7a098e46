"""Issue 11, defect 1: nothing is charged that cannot be delivered, and big answers never
break the audit. Real node over mTLS on 127.0.0.1, real OpenDP, real SQLite ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from support_node import NodeWorld, ledger_size, make_node_world, node_stub, query_request

from node.server import RunningNode, running_node
from npcs.errors import field_violation_from_metadata
from npcs.serde_ledger import checkpoint_from_proto, ledger_entry_from_proto
from npcs.transport import MAX_MESSAGE_BYTES
from npcs.v1 import node_pb2 as pb
from privacy import tlog
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)

TIMEOUT = 120
ALL_DATES = DateRangeFilter(column="incident_date", start=date(1990, 1, 1), end=date(2099, 12, 31))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> NodeWorld:
    return make_node_world(tmp_path_factory.mktemp("oversized"))


@pytest.fixture(scope="module")
def server(world: NodeWorld) -> Iterator[RunningNode]:
    with running_node(world.node.root) as node:
        yield node


def test_32_quantiles_by_quarter_over_110_years_is_refused_before_any_charge(
    world: NodeWorld, server: RunningNode
) -> None:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.QUANTILES,
        column="child_age_months",
        quantiles=tuple(round((i + 1) / 33, 4) for i in range(32)),
        group_by=(GroupByTime(column="incident_date", bucket=TimeBucket.QUARTER),),
        filters=(ALL_DATES,),
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="defect 1 reproduction",
    )
    before = ledger_size(world)
    with node_stub(world, server.port, world.alice) as stub, pytest.raises(grpc.RpcError) as err:
        stub.Query(query_request(spec, world.alice), timeout=TIMEOUT)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violation = field_violation_from_metadata(err.value.trailing_metadata())
    assert violation is not None
    assert violation[0] == "query.group_by"
    assert "bytes" in violation[1]
    assert ledger_size(world) == before


def big_count(purpose: str) -> QuerySpec:
    """3,960 cells: 1,320 months x 3 values of sex."""
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=(
            GroupByTime(column="incident_date", bucket=TimeBucket.MONTH),
            GroupByColumn(column="sex"),
        ),
        filters=(ALL_DATES,),
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose=purpose,
    )


def test_six_3960_cell_answers_are_delivered_and_audited_in_pages_under_the_limit(
    world: NodeWorld, server: RunningNode
) -> None:
    with node_stub(world, server.port, world.alice) as stub:
        for index in range(6):
            response = stub.Query(
                query_request(big_count(f"big {index}"), world.alice), timeout=TIMEOUT
            )
            assert response.ByteSize() < MAX_MESSAGE_BYTES
    size = ledger_size(world)
    pages: list[pb.GetLedgerResponse] = []
    with node_stub(world, server.port, world.auditor) as stub:
        while sum(len(page.entries) for page in pages) < size:
            start = sum(len(page.entries) for page in pages)
            pages.append(
                stub.GetLedger(pb.GetLedgerRequest(start=start, end=size), timeout=TIMEOUT)
            )
            assert pages[-1].entries, "a page always carries at least one entry"
    assert len(pages) > 1, "six ~1.7 MB entries cannot fit one 4 MiB page"
    assert all(page.ByteSize() <= MAX_MESSAGE_BYTES for page in pages)
    entries = [ledger_entry_from_proto(m) for page in pages for m in page.entries]
    assert [entry.seq for entry in entries] == list(range(size))
    checkpoint = checkpoint_from_proto(pages[-1].checkpoint)
    assert tlog.root_from_leaf_hashes([e.leaf_hash() for e in entries[: checkpoint.size]]) == (
        checkpoint.root
    )


def test_node_log_shows_the_status_really_sent(tmp_path: Path) -> None:
    from node.servicer import ResponseTooLargeError, _within_message_limit

    big = pb.GetLedgerResponse(entries=[pb.LedgerEntry(answer=b"x" * MAX_MESSAGE_BYTES)])
    with pytest.raises(ResponseTooLargeError, match="over the 4,194,304-byte message limit"):
        _within_message_limit("GetLedger", big)
    assert _within_message_limit("GetLedger", pb.GetLedgerResponse()) == b""


def test_a_size_refusal_is_explained_as_size_not_budget(
    world: NodeWorld, server: RunningNode
) -> None:
    from support_node import client_credentials

    from coordinator.errors import explain_rpc_error
    from npcs.v1 import node_pb2_grpc

    # A real gRPC size refusal: this channel may send only 64 bytes.
    options = [("grpc.max_send_message_length", 64)]
    with grpc.secure_channel(
        f"localhost:{server.port}", client_credentials(world, world.alice), options=options
    ) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Query(query_request(big_count("size"), world.alice), timeout=TIMEOUT)
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    problem = explain_rpc_error(err.value, address="localhost", timeout=TIMEOUT)
    assert problem.code == "RESOURCE_EXHAUSTED"
    assert problem.reason.startswith("message too large: ")
    assert "budget" not in problem.reason
