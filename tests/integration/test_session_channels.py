"""A session keeps each node's mTLS channel for its later fan-outs, and a receipt is
verified in full unless its checkpoint is the very one the node's description showed.

Against a real node over real mTLS (the `node_server` fixture)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support_node import NODE_NAME, PARTNERSHIP, NodeWorld, count_spec, make_node_world

from coordinator.client import ClientCredentials, check_receipt
from coordinator.fanout import FanoutSettings, NodeQueryResult, query_node
from coordinator.partnership import IdentityFiles, NodeEntry, Partnership
from coordinator.querying import run_query
from coordinator.results import ResultsStore
from coordinator.session import Session
from kernel.messages import PublishedCheckpoint, QueryAnswer
from node.server import RunningNode, ServerOptions, running_node
from npcs.v1 import node_pb2 as pb
from privacy import tlog


@pytest.fixture
def session(node_world: NodeWorld, node_server: RunningNode, tmp_path: Path) -> Iterator[Session]:
    alice = node_world.alice
    identity = IdentityFiles(alice.ca_cert, alice.tls_cert, alice.tls_key, alice.signing_key)
    entry = NodeEntry(
        name=NODE_NAME,
        address=node_server.address,
        ledger_key_fingerprint=tlog.key_fingerprint(node_world.ledger_public_key()),
    )
    with Session(
        partnership=Partnership(name=PARTNERSHIP, identity=identity, nodes=(entry,)),
        credentials=ClientCredentials.load(identity),
        settings=FanoutSettings(timeout=30.0),
        store=ResultsStore(tmp_path / "results.sqlite"),
    ) as opened:
        yield opened


def test_a_sessions_later_queries_reuse_the_channel_its_first_query_opened(
    session: Session,
) -> None:
    (entry,) = session.partnership.nodes
    spec = count_spec(purpose="channels")
    first = run_query(session, (entry,), spec).report
    channel = session.connections.channel(entry)
    again = run_query(session, (entry,), spec).report  # the same query_id: a replay
    assert session.connections.channel(entry) is channel
    assert [(s.answered, s.receipt, s.replayed) for s in first.nodes] == [(True, "verified", False)]
    assert [(s.answered, s.receipt, s.replayed) for s in again.nodes] == [(True, "verified", True)]
    session.close()
    with pytest.raises(RuntimeError, match="closed"):
        run_query(session, (entry,), count_spec(purpose="after close"))
    with pytest.raises(ValueError, match="closed channel"):
        channel.stub.Describe(pb.DescribeRequest(), timeout=30)


def test_a_node_unreachable_in_one_query_is_dialled_afresh_by_the_next(
    session: Session, tmp_path: Path
) -> None:
    """A kept channel that failed would sit in gRPC's reconnect backoff: it is dropped,
    so a node that comes up between two queries of a session answers the second."""
    world = make_node_world(tmp_path / "late", node_name="late", children=2_000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    late = NodeEntry(
        name="late",
        address=f"127.0.0.1:{port}",
        ledger_key_fingerprint=tlog.key_fingerprint(world.ledger_public_key()),
    )
    identity = IdentityFiles(
        world.alice.ca_cert, world.alice.tls_cert, world.alice.tls_key, world.alice.signing_key
    )
    with Session(
        partnership=Partnership(name=PARTNERSHIP, identity=identity, nodes=(late,)),
        credentials=ClientCredentials.load(identity),
        settings=FanoutSettings(timeout=30.0, retries=0),
        store=session.store,
    ) as late_session:
        spec = count_spec(purpose="late")
        (down,) = run_query(late_session, (late,), spec).report.nodes
        assert not down.answered
        with running_node(world.node.root, ServerOptions(port=port)):
            (up,) = run_query(late_session, (late,), spec).report.nodes
        assert (up.answered, up.receipt) == (True, "verified")


def answered(session: Session) -> tuple[NodeEntry, NodeQueryResult]:
    (entry,) = session.partnership.nodes
    result = query_node(
        entry,
        session.credentials,
        count_spec(purpose="receipt"),
        session.settings,
        connections=session.connections,
    )
    assert result.answer is not None
    assert result.receipt is not None
    assert result.receipt.verified
    return entry, result


def receipt_check(
    entry: NodeEntry, key: Ed25519PublicKey, answer: QueryAnswer, verified: PublishedCheckpoint
) -> bool:
    query_id = answer.release().query_id
    return check_receipt(
        answer, entry=entry, ledger_key=key, query_id=query_id, verified_checkpoint=verified
    ).verified


def with_checkpoint(answer: QueryAnswer, signed: tlog.SignedCheckpoint) -> QueryAnswer:
    return dataclasses.replace(
        answer, checkpoint=dataclasses.replace(answer.checkpoint, signed=signed)
    )


def test_a_receipt_is_verified_in_full_unless_its_checkpoint_is_the_one_verified(
    session: Session, node_world: NodeWorld
) -> None:
    entry, result = answered(session)
    answer = result.answer
    assert answer is not None
    key = node_world.ledger_public_key()
    signed = answer.checkpoint.signed
    forged = with_checkpoint(answer, dataclasses.replace(signed, signature=bytes(64)))
    other_key_hash = with_checkpoint(answer, dataclasses.replace(signed, key_hash=bytes(4)))
    assert receipt_check(entry, key, answer, answer.checkpoint)
    # The checkpoint verified was the genuine one: a forged one is verified, and refused.
    assert not receipt_check(entry, key, forged, answer.checkpoint)
    assert not receipt_check(entry, key, other_key_hash, answer.checkpoint)
    # Even with the forged checkpoint passed as verified, the receipt's entry, answer and
    # inclusion proof are still checked against its root.
    root = dataclasses.replace(signed.checkpoint, root=bytes(32))
    tampered_root = with_checkpoint(answer, dataclasses.replace(signed, checkpoint=root))
    assert not receipt_check(entry, key, tampered_root, tampered_root.checkpoint)
