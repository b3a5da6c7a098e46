"""The node's gRPC service over real mTLS on 127.0.0.1: answers, receipts, refusals.

Every refusal is checked two ways: the status code the client sees, and the ledger's
row count (a refused call charges nothing).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support_node import (
    NODE_NAME,
    NodeWorld,
    count_spec,
    ledger_size,
    make_node_world,
    node_channel,
    node_stub,
    query_request,
    sign_query,
)

from kernel.keyfiles import public_key_from_pem
from kernel.messages import BudgetShortfall
from kernel.signing import signed_request_from_bytes
from node.cli import cli as node_cli
from node.server import RunningNode, running_node
from node.settings import BudgetSettings
from npcs.errors import budget_shortfall_from_metadata
from npcs.serde_ledger import (
    checkpoint_from_proto,
    ledger_entry_from_proto,
    query_response_from_proto,
)
from npcs.serde_node import describe_from_proto
from npcs.serde_query import preview_from_proto, query_request_to_proto, query_to_proto
from npcs.v1 import node_pb2 as pb
from npcs.v1 import node_pb2_grpc
from privacy import tlog
from privacy.ledger.entry import entry_from_canonical_bytes
from privacy.query import GroupByColumn, PrivacyLoss, QuerySpec, Statistic
from privacy.release import Release
from privacy.schema import Schema

TIMEOUT = 30


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_signed_query_returns_dp_answer_with_receipt_verified_by_ledger_key(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    before = ledger_size(node_world)
    spec = count_spec(rho="0.01")
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        response = stub.Query(query_request(spec, node_world.alice), timeout=TIMEOUT)
    answer = query_response_from_proto(response)
    release = answer.release()
    assert release.query_id == str(spec.query_id)
    assert release.node == NODE_NAME
    assert release.cost_units == 10_000
    estimate = release.cells[0].estimates[0]
    assert estimate.distribution.value == "gaussian"
    assert estimate.scale > 0
    assert estimate.ci_low < estimate.value < estimate.ci_high

    public_key = node_world.ledger_public_key()
    checkpoint = answer.checkpoint
    assert checkpoint.key_fingerprint == tlog.key_fingerprint(public_key)
    assert checkpoint.signed.verify(public_key)
    assert checkpoint.size == answer.tree_size == before + 1
    assert tlog.verify_inclusion(
        tlog.leaf_hash(answer.leaf_data),
        answer.entry_index,
        answer.tree_size,
        answer.inclusion_proof,
        checkpoint.root,
    )
    entry = entry_from_canonical_bytes(answer.leaf_data)
    assert entry.answer == answer.release_bytes
    assert entry.analyst == "alice"
    assert entry.signed_request is not None
    assert signed_request_from_bytes(entry.signed_request).signer_public_key
    assert answer.verify(public_key)
    assert not answer.replayed
    assert ledger_size(node_world) == before + 1


def test_retry_with_same_query_id_returns_stored_bytes_without_new_charge(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    spec = count_spec(rho="0.01")
    request = query_request(spec, node_world.alice)
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        first = stub.Query(request, timeout=TIMEOUT)
        size = ledger_size(node_world)
        # The same signed request again (a lost reply), and a freshly signed retry.
        again = stub.Query(request, timeout=TIMEOUT)
        fresh = stub.Query(query_request(spec, node_world.alice), timeout=TIMEOUT)
    assert again.release_json == first.release_json == fresh.release_json
    assert again.receipt.replayed
    assert fresh.receipt.replayed
    assert again.receipt.entry_index == first.receipt.entry_index
    assert ledger_size(node_world) == size


def test_reused_query_id_with_another_query_is_already_exists(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    spec = count_spec(rho="0.01")
    changed = spec.model_copy(update={"privacy": PrivacyLoss(rho=Decimal("0.02"))})
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        stub.Query(query_request(spec, node_world.alice), timeout=TIMEOUT)
        size = ledger_size(node_world)
        error = rpc_error(
            lambda: stub.Query(query_request(changed, node_world.alice), timeout=TIMEOUT)
        )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert ledger_size(node_world) == size


def test_describe_publishes_schema_policy_remaining_budget_and_ledger_key(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        description = describe_from_proto(stub.Describe(pb.DescribeRequest(), timeout=TIMEOUT))
    assert description.node_name == NODE_NAME
    assert description.partnership == "demo"
    assert isinstance(description.schema, Schema)
    county = description.schema.dataset("incidents").column("county")
    assert county.domain == ("c001", "c002", "c003")
    assert description.policy.max_rho_per_query == "1"
    assert 0 < description.remaining_units["incidents"] <= 10_000_000
    assert description.child_population["2020"] == 400_000
    public_key = public_key_from_pem(description.ledger_public_key_pem.encode())
    assert tlog.key_fingerprint(public_key) == tlog.key_fingerprint(node_world.ledger_public_key())
    assert description.latest_checkpoint is not None
    assert description.latest_checkpoint.signed.verify(public_key)
    assert description.opendp_version == "0.16.0"


def test_preview_reports_cost_and_accuracy_and_charges_nothing(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    before = ledger_size(node_world)
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=Decimal("0.05")),
        purpose="preview",
    )
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        preview = preview_from_proto(
            stub.Preview(pb.PreviewRequest(query=query_to_proto(spec)), timeout=TIMEOUT)
        )
    assert 0 < preview.cost_units <= 50_000
    assert preview.cost_rho == str(Decimal(preview.cost_units) / 1_000_000).rstrip("0")
    assert preview.expected
    assert all(value.ci_half_width > 0 for value in preview.expected)
    assert preview.remaining_units > 0
    assert ledger_size(node_world) == before


def test_auditor_reads_ledger_entries_and_consistency_proofs_that_verify(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        stub.Query(query_request(count_spec(), node_world.alice), timeout=TIMEOUT)
    public_key = node_world.ledger_public_key()
    with node_stub(node_world, node_server.port, node_world.auditor) as stub:
        old = checkpoint_from_proto(
            stub.GetCheckpoint(pb.GetCheckpointRequest(), timeout=TIMEOUT).checkpoint
        )
        assert old.signed.verify(public_key)
        ledger = stub.GetLedger(pb.GetLedgerRequest(start=0, end=0), timeout=TIMEOUT)
        entries = [ledger_entry_from_proto(message) for message in ledger.entries]
        assert len(entries) == old.size
        assert tlog.root_from_leaf_hashes([e.leaf_hash() for e in entries]) == old.root

    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        stub.Query(query_request(count_spec(), node_world.alice), timeout=TIMEOUT)
    with node_stub(node_world, node_server.port, node_world.auditor) as stub:
        response = stub.GetConsistencyProof(
            pb.GetConsistencyProofRequest(old_size=old.size, new_size=old.size + 1),
            timeout=TIMEOUT,
        )
        new = checkpoint_from_proto(response.checkpoint)
        assert new.size == old.size + 1
        assert new.signed.verify(public_key)
        assert tlog.verify_consistency(old.size, new.size, old.root, new.root, response.proof)
        beyond = rpc_error(
            lambda: stub.GetLedger(
                pb.GetLedgerRequest(start=0, end=new.size + 100), timeout=TIMEOUT
            )
        )
        assert beyond.code() == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------------------------
# Who may call what


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("none", grpc.StatusCode.UNAVAILABLE),  # no client certificate: handshake fails
        ("stranger", grpc.StatusCode.UNAVAILABLE),  # certificate from another CA
        ("carol", grpc.StatusCode.PERMISSION_DENIED),  # revoked by the node
        ("bob", grpc.StatusCode.PERMISSION_DENIED),  # not in allowed_analysts
        ("auditor", grpc.StatusCode.PERMISSION_DENIED),  # auditors may not query
    ],
)
def test_callers_who_may_not_query_are_refused_and_nothing_is_charged(
    node_world: NodeWorld, node_server: RunningNode, caller: str, expected: grpc.StatusCode
) -> None:
    who = None if caller == "none" else getattr(node_world, caller)
    signer = who if who is not None and caller != "auditor" else node_world.alice
    before = ledger_size(node_world)
    request = query_request(count_spec(), signer)
    with node_stub(node_world, node_server.port, who) as stub:
        error = rpc_error(lambda: stub.Query(request, timeout=TIMEOUT))
    assert error.code() == expected
    assert ledger_size(node_world) == before


def test_analyst_may_not_read_the_ledger(node_world: NodeWorld, node_server: RunningNode) -> None:
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        error = rpc_error(lambda: stub.GetLedger(pb.GetLedgerRequest(), timeout=TIMEOUT))
        proof_error = rpc_error(
            lambda: stub.GetConsistencyProof(
                pb.GetConsistencyProofRequest(old_size=1, new_size=1), timeout=TIMEOUT
            )
        )
    assert error.code() == proof_error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "this call is for: auditor" in (error.details() or "")


# ---------------------------------------------------------------------------------
# Signed requests


def _refused(world: NodeWorld, server: RunningNode, request: pb.QueryRequest) -> grpc.RpcError:
    before = ledger_size(world)
    with node_stub(world, server.port, world.alice) as stub:
        error = rpc_error(lambda: stub.Query(request, timeout=TIMEOUT))
    assert ledger_size(world) == before, "a refused request must charge nothing"
    return error


def test_expired_signed_request_is_refused(node_world: NodeWorld, node_server: RunningNode) -> None:
    request = query_request(count_spec(), node_world.alice, now=time.time() - 3600)
    error = _refused(node_world, node_server, request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "issued" in (error.details() or "")


def test_request_signed_for_another_node_is_refused(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    request = query_request(count_spec(), node_world.alice, audience="county-b")
    error = _refused(node_world, node_server, request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "county-b" in (error.details() or "")


def test_query_changed_after_signing_is_refused(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    spec = count_spec(rho="0.01")
    signed = sign_query(spec, node_world.alice)
    tampered = spec.model_copy(update={"privacy": PrivacyLoss(rho=Decimal("0.5"))})
    error = _refused(node_world, node_server, query_request_to_proto(tampered, signed))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hash" in (error.details() or "")


def test_signature_bytes_altered_is_unauthenticated(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    spec = count_spec()
    signed = sign_query(spec, node_world.alice)
    flipped = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    request = query_request_to_proto(spec, replace(signed, signature=flipped))
    error = _refused(node_world, node_server, request)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_request_signed_with_someone_elses_key_is_refused(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    spec = count_spec()
    error = _refused(node_world, node_server, query_request(spec, node_world.bob))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "sign with your own key" in (error.details() or "")


def test_replayed_nonce_of_an_unanswered_request_is_refused(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    """The first request is refused after its signature was accepted (no data loaded for
    `reports`): replaying the same signed request does not get another try."""
    spec = count_spec().model_copy(update={"dataset": "reports"})
    request = query_request(spec, node_world.alice)
    first = _refused(node_world, node_server, request)
    assert first.code() == grpc.StatusCode.NOT_FOUND
    replay = _refused(node_world, node_server, request)
    assert replay.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "nonce" in (replay.details() or "")


def test_query_costing_more_than_signed_is_refused(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    request = query_request(count_spec(rho="0.01"), node_world.alice, cost_units=9_999)
    error = _refused(node_world, node_server, request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "authorises at most" in (error.details() or "")


# ---------------------------------------------------------------------------------
# Budget


@pytest.fixture(scope="module")
def small_budget_node(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NodeWorld, RunningNode]]:
    world = make_node_world(tmp_path_factory.mktemp("small-budget"))
    budget = BudgetSettings(total_rho_per_unit_kind={"child": "0.03"}, max_rho_per_query="1")
    with running_node(world.node.root, budget=budget) as node:
        yield world, node


def test_budget_exhaustion_is_resource_exhausted_with_details(
    small_budget_node: tuple[NodeWorld, RunningNode],
) -> None:
    world, node = small_budget_node
    with node_stub(world, node.port, world.alice) as stub:
        for _ in range(3):
            stub.Query(query_request(count_spec(rho="0.01"), world.alice), timeout=TIMEOUT)
        size = ledger_size(world)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Query(query_request(count_spec(rho="0.01"), world.alice), timeout=TIMEOUT)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "has only rho 0 left" in (error.details() or "")
    shortfall = budget_shortfall_from_metadata(error.trailing_metadata())
    assert shortfall == BudgetShortfall(
        dataset="incidents", scope="unit_kind", requested_units=10_000, remaining_units=0
    )
    assert ledger_size(world) == size


def test_concurrent_queries_beyond_the_budget_yield_exactly_what_fits(
    tmp_path: Path,
) -> None:
    world = make_node_world(tmp_path)
    budget = BudgetSettings(total_rho_per_unit_kind={"child": "0.03"}, max_rho_per_query="1")
    requests = [query_request(count_spec(rho="0.01"), world.alice) for _ in range(8)]
    with (
        running_node(world.node.root, budget=budget) as node,
        node_stub(world, node.port, world.alice) as stub,
    ):

        def send(request: pb.QueryRequest) -> grpc.StatusCode:
            try:
                stub.Query(request, timeout=TIMEOUT)
            except grpc.RpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(send, requests))
    assert codes.count(grpc.StatusCode.OK) == 3
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 5
    assert ledger_size(world) == 3


# ---------------------------------------------------------------------------------
# Health and reflection


def test_health_reports_serving(node_world: NodeWorld, node_server: RunningNode) -> None:
    with node_channel(node_world, node_server.port, node_world.auditor) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "npcs.v1.Node"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_node_and_health_services(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with node_channel(node_world, node_server.port, node_world.auditor) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "npcs.v1.Node" in services
    assert "grpc.health.v1.Health" in services


def test_corrupted_ledger_reports_not_serving_and_answers_no_query(tmp_path: Path) -> None:
    import sqlite3

    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node, node_stub(world, node.port, world.alice) as stub:
        stub.Query(query_request(count_spec(), world.alice), timeout=TIMEOUT)
    with sqlite3.connect(world.node.ledger_db) as connection:
        connection.execute("UPDATE entries SET cost_units = 0 WHERE seq = 0")
    with running_node(world.node.root) as node:
        assert not node.engine.healthy
        with node_channel(world, node.port, world.alice) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="npcs.v1.Node"), timeout=TIMEOUT
            )
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = node_pb2_grpc.NodeStub(channel)
            error = rpc_error(
                lambda: stub.Query(query_request(count_spec(), world.alice), timeout=TIMEOUT)
            )
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ledger_size(world) == 1


def test_release_bytes_parse_as_release(node_world: NodeWorld, node_server: RunningNode) -> None:
    spec = count_spec()
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        response = stub.Query(query_request(spec, node_world.alice), timeout=TIMEOUT)
    release = Release.from_bytes(response.release_json)
    assert release.to_bytes() == response.release_json


def test_each_call_logs_one_structured_line_without_query_content(
    node_world: NodeWorld, node_server: RunningNode, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from node.server import JsonLinesFormatter

    secret_purpose = "purpose-text-that-must-not-be-logged"
    with (
        caplog.at_level(logging.INFO, logger="npcs"),
        node_stub(node_world, node_server.port, node_world.alice) as stub,
    ):
        stub.Query(
            query_request(count_spec(purpose=secret_purpose), node_world.alice),
            timeout=TIMEOUT,
        )
    rpc_records = [record for record in caplog.records if record.name == "npcs.node.rpc"]
    assert [record.__dict__["method"] for record in rpc_records] == ["Query"]
    assert rpc_records[0].__dict__["code"] == "OK"
    assert rpc_records[0].__dict__["caller"] == "npcs://demo/analyst/alice"
    formatter = JsonLinesFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert not any(secret_purpose in line for line in lines)


def test_imported_group_populations_are_published_in_describe_without_a_restart(
    node_world: NodeWorld, node_server: RunningNode, tmp_path: Path
) -> None:
    csv_file = tmp_path / "populations.csv"
    csv_file.write_text(
        "year,column,value,population\n2020,race_ethnicity,black,52000\n2020,sex,female,195600\n"
    )
    result = CliRunner().invoke(
        node_cli,
        ["population", "import", str(node_world.node.root), str(csv_file), "--source", "ACS 2020"],
    )
    assert result.exit_code == 0, result.output
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        description = describe_from_proto(stub.Describe(pb.DescribeRequest(), timeout=TIMEOUT))
    table = description.group_populations
    assert table is not None
    assert table.source == "ACS 2020"
    assert table.lookup("2020", "race_ethnicity", "black") == 52_000
    assert table.lookup("2020", "sex", "female") == 195_600
    assert table.lookup("2021", "sex", "female") is None
