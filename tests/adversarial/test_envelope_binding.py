"""Issue 11, defect 2: the signed envelope must bind the query_id of the query it carries.

Attack on the old node: an analyst takes a recorded query_id, signs a day-old envelope
naming it with the hash of a new query (with another query_id), and sends the new query.
The node skipped freshness and nonce checks ("a retry of a recorded query_id") yet charged
the new query, and the stored envelope then broke every later audit of that node.
"""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
from support_node import (
    NODE_NAME,
    NodeWorld,
    count_spec,
    ledger_size,
    node_stub,
    query_request,
)

from kernel.keyfiles import load_ed25519_private_key
from kernel.signing import new_envelope, sign_request
from node.server import RunningNode
from npcs.serde_query import normalize_spec, query_request_to_proto
from privacy.budget import rho_to_units_ceil
from privacy.query import QuerySpec

TIMEOUT = 30
DAY = 86_400


def _envelope_naming(spec: QuerySpec, query_id: str, world: NodeWorld, *, now: float) -> object:
    """A correctly signed envelope for `spec`'s exact bytes that names `query_id`."""
    normalized = normalize_spec(spec)
    rho = normalized.privacy.rho
    assert rho is not None
    envelope = new_envelope(
        audience=NODE_NAME,
        query_id=query_id,
        canonical_query=normalized.canonical_bytes(),
        cost_rho_units=rho_to_units_ceil(rho),
        now=now,
    )
    return sign_request(envelope, load_ed25519_private_key(world.alice.signing_key))


@pytest.mark.parametrize("age_seconds", [0, DAY])
def test_envelope_naming_a_recorded_query_id_cannot_charge_another_query(
    node_world: NodeWorld, node_server: RunningNode, age_seconds: int
) -> None:
    recorded = count_spec(rho="0.01")
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        stub.Query(query_request(recorded, node_world.alice), timeout=TIMEOUT)
        before = ledger_size(node_world)
        new_query = count_spec(rho="0.02", query_id=uuid.uuid4())
        signed = _envelope_naming(
            new_query, str(recorded.query_id), node_world, now=time.time() - age_seconds
        )
        request = query_request_to_proto(new_query, signed)  # type: ignore[arg-type]
        with pytest.raises(grpc.RpcError) as raised:
            stub.Query(request, timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "query_id" in (raised.value.details() or "")
    assert ledger_size(node_world) == before, "a mismatched envelope must charge nothing"


def test_envelope_naming_an_unrecorded_other_query_id_is_refused(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    spec = count_spec(rho="0.01")
    signed = _envelope_naming(spec, str(uuid.uuid4()), node_world, now=time.time())
    before = ledger_size(node_world)
    with (
        node_stub(node_world, node_server.port, node_world.alice) as stub,
        pytest.raises(grpc.RpcError) as raised,
    ):
        stub.Query(query_request_to_proto(spec, signed), timeout=TIMEOUT)  # type: ignore[arg-type]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ledger_size(node_world) == before


def test_an_identical_retry_of_a_recorded_query_still_gets_its_stored_answer(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    """Binding must not break the retry path: a day-old copy of the original request."""
    spec = count_spec(rho="0.01")
    old = time.time() - DAY
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        first = stub.Query(query_request(spec, node_world.alice, now=time.time()), timeout=TIMEOUT)
        before = ledger_size(node_world)
        retry = stub.Query(query_request(spec, node_world.alice, now=old), timeout=TIMEOUT)
    assert retry.receipt.replayed
    assert retry.release_json == first.release_json
    assert ledger_size(node_world) == before
