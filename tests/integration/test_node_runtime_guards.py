"""A running node's guards beyond the Node methods: small-count suppression, health that
follows ledger faults seen while serving, revocation on every service, and server limits
from node.toml. Real servers on 127.0.0.1 over mTLS.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support_node import (
    COUNTIES,
    NodeWorld,
    count_spec,
    ledger_size,
    make_node_world,
    node_channel,
    node_stub,
    query_request,
)

from node.plan_cache import PlanKey
from node.server import RunningNode, ServerOptions, running_node
from npcs.serde_ledger import query_response_from_proto
from privacy.plan import QueryPlan
from privacy.query import GroupByColumn, PrivacyLoss, QuerySpec, Statistic
from privacy.query_route import QueryRoute
from privacy.release import Release

TIMEOUT = 30
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(world: NodeWorld, node: RunningNode) -> int:
    with node_channel(world, node.port, world.auditor) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="npcs.v1.Node"), timeout=TIMEOUT
        )
    return int(response.status)


def _query(world: NodeWorld, node: RunningNode, **spec: object) -> Release:
    query = count_spec(**spec)  # type: ignore[arg-type]
    with node_stub(world, node.port, world.alice) as stub:
        response = stub.Query(query_request(query, world.alice), timeout=TIMEOUT)
    return query_response_from_proto(response).release()


def _query_error(world: NodeWorld, node: RunningNode) -> grpc.RpcError:
    with node_stub(world, node.port, world.alice) as stub, pytest.raises(grpc.RpcError) as raised:
        stub.Query(query_request(count_spec(), world.alice), timeout=TIMEOUT)
    return raised.value


# ---------------------------------------------------------------------------------
# Small-count suppression


def _county_spec() -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=Decimal("0.05")),
        purpose="suppression test",
    )


def _county_counts(world: NodeWorld, suppress_counts_below: int | None = None) -> Release:
    spec = _county_spec()
    with (
        running_node(world.node.root, suppress_counts_below=suppress_counts_below) as node,
        node_stub(world, node.port, world.alice) as stub,
    ):
        response = stub.Query(query_request(spec, world.alice), timeout=TIMEOUT)
    return query_response_from_proto(response).release()


def test_suppression_setting_flags_small_noisy_counts_at_the_same_cost(
    node_world: NodeWorld,
) -> None:
    """Above every count, every count is flagged; the value stays and the cost is unchanged."""
    plain = _county_counts(node_world)
    flagged = _county_counts(node_world, suppress_counts_below=10**9)

    plain_counts = [e for cell in plain.cells for e in cell.estimates if e.name == "count"]
    flagged_counts = [e for cell in flagged.cells for e in cell.estimates if e.name == "count"]
    assert len(flagged_counts) == len(plain_counts) >= 3
    assert not any(estimate.suppressed for estimate in plain_counts)
    assert all(estimate.suppressed for estimate in flagged_counts)
    # Post-processing only: the noisy value is still released, and it costs the same.
    assert all(math.isfinite(e.value) and e.value > 0 for e in flagged_counts)
    assert flagged.cost_units == plain.cost_units


@pytest.mark.parametrize("route", list(QueryRoute))
def test_both_query_routes_answer_every_cell_at_the_same_cost(
    node_world: NodeWorld, route: QueryRoute
) -> None:
    """query_route in node.toml picks the route (the ingested snapshot is verified within
    its bounds, so `fast` is taken); the answer and its charge have the same shape."""
    spec = _county_spec()
    with (
        running_node(node_world.node.root, query_route=route) as node,
        node_stub(node_world, node.port, node_world.alice) as stub,
    ):
        response = stub.Query(query_request(spec, node_world.alice), timeout=TIMEOUT)
        snapshot = node.engine._store.current("incidents")
        assert snapshot is not None
        key = PlanKey(spec.query_hash(), snapshot.snapshot_id)
        plan = node.engine.plans.plan(key, _not_planned_again)
    release = query_response_from_proto(response).release()
    assert plan.route is route
    assert release.cost_units == plan.cost_units == _county_counts(node_world).cost_units
    assert [cell.key for cell in release.cells] == [(county,) for county in COUNTIES]


def _not_planned_again() -> QueryPlan:
    raise AssertionError("the query's plan should still be in the node's plan cache")


def test_suppression_flags_only_counts_below_the_threshold(node_world: NodeWorld) -> None:
    release = _county_counts(node_world, suppress_counts_below=1)
    counts = [e for cell in release.cells for e in cell.estimates if e.name == "count"]
    assert counts
    assert all(estimate.suppressed == (estimate.value < 1) for estimate in counts)


# ---------------------------------------------------------------------------------
# Health follows ledger faults seen while serving


def test_a_ledger_fault_while_serving_turns_the_node_not_serving_until_restart(
    tmp_path: Path,
) -> None:
    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node:
        _query(world, node)
        assert _health(world, node) == SERVING

        # The ledger database breaks under the running node (here: its table vanishes).
        with sqlite3.connect(world.node.ledger_db) as connection:
            connection.execute("ALTER TABLE entries RENAME TO entries_moved")
        fault = _query_error(world, node)
        assert fault.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert str(tmp_path) not in (fault.details() or ""), "no server path to clients"
        assert not node.engine.healthy
        assert _health(world, node) == NOT_SERVING

        # Repairing the file does not bring the node back: it needs a restart (and the
        # operator's `ledger verify`), so no later query is answered by this process.
        with sqlite3.connect(world.node.ledger_db) as connection:
            connection.execute("ALTER TABLE entries_moved RENAME TO entries")
        error = _query_error(world, node)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "restart" in (error.details() or "")
        assert _health(world, node) == NOT_SERVING

    with running_node(world.node.root) as node:
        assert _health(world, node) == SERVING
        _query(world, node)
    assert ledger_size(world) == 2


def test_an_external_write_lock_makes_the_node_not_serving_only_while_it_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 defect 4: a lock held past the busy deadline is transient. The node says
    UNAVAILABLE (no server path), is NOT_SERVING while the lock is held, and SERVING again
    once a re-check passes after it is released (before the fix: NOT_SERVING for good)."""
    import threading

    import privacy.ledger.sqlschema

    # The ledger gives up on a busy database after this long (120 s in production).
    monkeypatch.setattr(privacy.ledger.sqlschema, "BUSY_DEADLINE_SECONDS", 0.2)
    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node:
        recovered = threading.Event()

        def on_health(healthy: bool) -> None:
            if healthy:
                recovered.set()

        node.engine.add_health_listener(on_health)
        holder = sqlite3.connect(world.node.ledger_db, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            error = _query_error(world, node)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert str(tmp_path) not in (error.details() or "")
            assert _health(world, node) == NOT_SERVING
            assert not recovered.is_set()
            assert _query_error(world, node).code() == grpc.StatusCode.FAILED_PRECONDITION
        finally:
            holder.close()
        assert recovered.wait(timeout=60), "the node did not re-check after the lock was freed"
        assert _health(world, node) == SERVING
        _query(world, node)
    assert ledger_size(world) == 1


def test_a_missing_intermediate_checkpoint_row_fails_one_proof_not_the_node(
    tmp_path: Path,
) -> None:
    """Issue 11 defect 4: before the fix, one GetConsistencyProof to a size whose
    checkpoint row was missing took the node out of service until restart."""
    from npcs.v1 import node_pb2 as pb

    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node:
        for _ in range(3):
            _query(world, node)
        with sqlite3.connect(world.node.ledger_db) as connection:
            connection.execute("DELETE FROM checkpoints WHERE size = 2")
        with node_stub(world, node.port, world.auditor) as stub:
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetConsistencyProof(
                    pb.GetConsistencyProofRequest(old_size=1, new_size=2), timeout=TIMEOUT
                )
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            assert "latest checkpoint (size 3)" in (raised.value.details() or "")
            proof = stub.GetConsistencyProof(
                pb.GetConsistencyProofRequest(old_size=1, new_size=3), timeout=TIMEOUT
            )
        assert proof.proof
        assert _health(world, node) == SERVING
        _query(world, node)
    assert ledger_size(world) == 4


# ---------------------------------------------------------------------------------
# Revocation on every service


def test_revoked_certificate_is_refused_by_health_and_reflection(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with node_channel(node_world, node_server.port, node_world.carol) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as check:
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        assert check.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "revoked" in (check.value.details() or "")

        with pytest.raises(grpc.RpcError) as watch:
            next(iter(health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)))
        assert watch.value.code() == grpc.StatusCode.PERMISSION_DENIED

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as reflect:
            list(reflection.ServerReflectionInfo(iter([listing]), timeout=TIMEOUT))
        assert reflect.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_unrevoked_members_still_reach_health_and_reflection(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    for who in (node_world.alice, node_world.bob, node_world.auditor):
        with node_channel(node_world, node_server.port, who) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT
            )
            assert status.status == SERVING
            listing = reflection_pb2.ServerReflectionRequest(list_services="")
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            (reply,) = reflection.ServerReflectionInfo(iter([listing]), timeout=TIMEOUT)
            names = {service.name for service in reply.list_services_response.service}
            assert "npcs.v1.Node" in names


# ---------------------------------------------------------------------------------
# Server limits from node.toml


def test_server_limits_come_from_node_toml(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    text = world.node.settings_file.read_text(encoding="utf-8")
    text = text.replace("max_workers = 8", "max_workers = 3")
    text = text.replace("grace_seconds = 10.0", "grace_seconds = 0.5")
    world.node.settings_file.write_text(text, encoding="utf-8")
    with running_node(world.node.root) as node:
        assert node.options.max_workers == 3
        assert node.options.grace_seconds == 0.5
        assert node.options.max_concurrent_rpcs == 32
    with running_node(world.node.root, ServerOptions(grace_seconds=2.0)) as node:
        assert node.options.grace_seconds == 2.0  # `serve --grace` wins over node.toml
        assert node.options.max_workers == 3


def test_max_concurrent_rpcs_setting_reaches_the_server(tmp_path: Path) -> None:
    """With room for one call, a second call while a health Watch is open is refused."""
    # Its own node folder: the module's shared node is being served (one serve per folder).
    world = make_node_world(tmp_path)
    with (
        running_node(world.node.root, server={"max_concurrent_rpcs": 1}) as node,
        node_channel(world, node.port, world.auditor) as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        try:
            assert next(watch).status == SERVING  # the watch now holds the only slot
            with pytest.raises(grpc.RpcError) as second:
                health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
            assert second.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            watch.cancel()
