"""`npcs-node serve` killed with SIGKILL while answering concurrent queries, then restarted:
the ledger verifies, and every answer a client received is in it, byte for byte."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serve_process import start_node, stop_and_close
from support_node import NodeWorld, count_spec, make_node_world, node_channel, query_request

from npcs.v1 import node_pb2_grpc
from privacy.ledger.reader import LedgerReader

ROUNDS = 3
WORKERS = 4
ANSWERS_BEFORE_KILL = 4


def run_until_killed(
    world: NodeWorld, port: int, process: subprocess.Popen[str]
) -> dict[str, bytes]:
    """Fire queries from several threads; SIGKILL the node once some were answered."""
    received: dict[str, bytes] = {}
    lock = threading.Lock()
    killed = threading.Event()

    def worker() -> None:
        with node_channel(world, port, world.alice) as channel:
            stub = node_pb2_grpc.NodeStub(channel)
            while not killed.is_set():
                spec = count_spec(rho="0.001")
                try:
                    response = stub.Query(query_request(spec, world.alice), timeout=10)
                except grpc.RpcError:
                    continue
                with lock:
                    received[str(spec.query_id)] = response.release_json
                    if len(received) >= ANSWERS_BEFORE_KILL and not killed.is_set():
                        os.kill(process.pid, signal.SIGKILL)
                        killed.set()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(worker) for _ in range(WORKERS)]
        killed.wait(timeout=120)
        if not killed.is_set():
            process.kill()
            killed.set()
        for future in futures:
            future.result()
    stop_and_close(process)
    return received


@pytest.mark.crash
def test_kill9_during_concurrent_queries_loses_no_received_answer(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    received: dict[str, bytes] = {}
    for _ in range(ROUNDS):
        process, port = start_node(world)
        received |= run_until_killed(world, port, process)
        assert process.returncode == -signal.SIGKILL

    with LedgerReader.open_existing(world.node.ledger_db) as reader:
        report = reader.verify(world.ledger_public_key())
        assert report.ok, report.problems
        for query_id, release_bytes in received.items():
            entry = reader.entry_by_query_id(query_id)
            assert entry is not None, f"answer {query_id} was received but is not in the ledger"
            assert entry.answer == release_bytes
    assert len(received) >= ROUNDS * ANSWERS_BEFORE_KILL

    process, port = start_node(world)
    try:
        with node_channel(world, port, world.auditor) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="npcs.v1.Node"), timeout=10
            )
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        process.send_signal(signal.SIGTERM)
        assert stop_and_close(process) == 0


@pytest.mark.crash
def test_sigterm_during_concurrent_queries_stops_cleanly_and_keeps_answers(
    tmp_path: Path,
) -> None:
    """SIGTERM while queries are in flight: running calls finish, later ones are refused,
    the process exits 0, and every answer received is in a ledger that verifies."""
    world = make_node_world(tmp_path)
    process, port = start_node(world)
    received: dict[str, bytes] = {}
    codes: list[grpc.StatusCode] = []
    lock = threading.Lock()
    stopping = threading.Event()

    def worker() -> None:
        with node_channel(world, port, world.alice) as channel:
            stub = node_pb2_grpc.NodeStub(channel)
            for _ in range(200):
                spec = count_spec(rho="0.001")
                try:
                    response = stub.Query(query_request(spec, world.alice), timeout=10)
                except grpc.RpcError as error:
                    with lock:
                        codes.append(error.code())
                    if stopping.is_set():
                        return
                    continue
                with lock:
                    received[str(spec.query_id)] = response.release_json
                    if len(received) == ANSWERS_BEFORE_KILL:
                        process.send_signal(signal.SIGTERM)
                        stopping.set()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(worker) for _ in range(WORKERS)]:
            future.result()
    assert stop_and_close(process) == 0
    # Calls that reach a stopping server are refused (UNAVAILABLE, or CANCELLED when the
    # stream raced the shutdown); none fails any other way.
    assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    with LedgerReader.open_existing(world.node.ledger_db) as reader:
        assert reader.verify(world.ledger_public_key()).ok
        for query_id, release_bytes in received.items():
            entry = reader.entry_by_query_id(query_id)
            assert entry is not None
            assert entry.answer == release_bytes
    assert not (world.node.root / "serve.port").exists()
