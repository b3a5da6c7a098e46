"""Issue 11, the auditor: a node whose answers cannot be read FAILS the audit.

A byzantine node, served over real mTLS with the node's own certificate, passes every
call through to the real node except one, which it answers with a message the client
cannot parse (a WireError). The audit used to swallow that and report the node OK.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from support_node import NodeWorld, client_credentials, make_node_world

from coordinator.audit.memory import open_audit_memory
from coordinator.audit.run import audit_partnership
from coordinator.client import ClientCredentials
from coordinator.partnership import NodeEntry, Partnership
from node.layout import NodePaths
from node.server import running_node
from node.serving_certificate import ServingCertificate
from npcs.transport import CLIENT_OPTIONS, SERVICE_NAME
from npcs.v1 import node_pb2 as pb
from privacy import tlog

HEALTH_SERVICE = "grpc.health.v1.Health"

UNREADABLE: dict[str, bytes] = {
    "Describe": pb.DescribeResponse(node_name="county-a", schema_json="{").SerializeToString(),
    "GetCheckpoint": pb.GetCheckpointResponse(
        checkpoint=pb.SignedCheckpoint(origin="demo/county-a", size=1, root=b"short")
    ).SerializeToString(),
}


@contextmanager
def byzantine_node(world: NodeWorld, real_address: str, broken: str) -> Iterator[str]:
    """A node at a new address answering `broken` unreadably, everything else truly."""
    channel = grpc.secure_channel(
        real_address, client_credentials(world, world.auditor), options=list(CLIENT_OPTIONS)
    )

    def handler(method: str, service: str = SERVICE_NAME) -> grpc.RpcMethodHandler[bytes, bytes]:
        forward = channel.unary_unary(
            f"/{service}/{method}", request_serializer=None, response_deserializer=None
        )

        def handle(raw: bytes, _context: grpc.ServicerContext) -> bytes:
            return UNREADABLE[method] if method == broken else bytes(forward(raw))

        return grpc.unary_unary_rpc_method_handler(handle)

    methods = [method.name for method in pb.DESCRIPTOR.services_by_name["Node"].methods]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(SERVICE_NAME, {m: handler(m) for m in methods}),
            grpc.method_handlers_generic_handler(
                HEALTH_SERVICE, {"Check": handler("Check", HEALTH_SERVICE)}
            ),
        ]
    )
    port = server.add_secure_port(
        "127.0.0.1:0", ServingCertificate(NodePaths(world.node.root)).credentials()
    )
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
        channel.close()


@pytest.mark.parametrize("broken", sorted(UNREADABLE))
def test_an_unreadable_answer_fails_the_audit(tmp_path: Path, broken: str) -> None:
    world = make_node_world(tmp_path / "world", children=20_000)
    with (
        running_node(world.node.root) as real,
        byzantine_node(world, f"127.0.0.1:{real.port}", broken) as address,
    ):
        entry = NodeEntry(
            name="county-a",
            address=address,
            ledger_key_fingerprint=tlog.key_fingerprint(world.ledger_public_key()),
        )
        report = audit_partnership(
            Partnership(name="demo", identity=world.auditor.identity_files(), nodes=(entry,)),
            ClientCredentials.load(world.auditor.identity_files()),
            auditor="npcs://demo/auditor/audrey",
            memory=open_audit_memory(tmp_path / "memory.sqlite"),
        )
    (node,) = report.nodes
    assert node.result == "FAILED"
    assert not node.spending_known
    assert any("cannot be read" in problem for problem in node.problems), node.problems
