"""Issue 11, defect 3: the node's self-check verifies every checkpoint signature.

A forged signature on an intermediate checkpoint passed the start-up self-check (it only
checked the last one). Now the start-up check stays O(log n) and the background pass
verifies every signature: the real node turns NOT_SERVING and answers no query.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support_ledger import charge_request
from support_node import count_spec, make_node_world, node_channel, node_stub, query_request

from node.cli import cli
from node.node_ledger import open_node_ledger
from node.server import running_node

DEADLINE_SECONDS = 120.0
"""How long the background pass may take on this shared machine (not a timing claim)."""


def _status(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return int(response.status)


def test_a_forged_intermediate_checkpoint_signature_takes_the_node_out_of_service(
    tmp_path: Path,
) -> None:
    world = make_node_world(tmp_path)
    with open_node_ledger(world.node.root) as ledger:
        for number in range(6):
            ledger.charge_and_release(
                charge_request(f"q{number}", f"q{number}".encode()),
                functools.partial(bytes, b"answer"),
            )
    with sqlite3.connect(world.node.ledger_db) as connection:
        connection.execute("UPDATE checkpoints SET signature = zeroblob(64) WHERE size = 3")
    connection.close()

    with (
        running_node(world.node.root) as node,
        node_channel(world, node.port, world.alice) as channel,
    ):
        give_up = time.monotonic() + DEADLINE_SECONDS
        status = _status(channel)
        while status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < give_up:
            time.sleep(0.05)
            status = _status(channel)
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        with (
            node_stub(world, node.port, world.alice) as stub,
            pytest.raises(grpc.RpcError) as refused,
        ):
            stub.Query(query_request(count_spec(), world.alice), timeout=30)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "answers no query" in str(refused.value.details())
    verified = CliRunner().invoke(cli, ["ledger", "verify", str(world.node.root)])
    assert verified.exit_code == 1
    assert "the checkpoint at size 3 has a bad signature" in verified.output
