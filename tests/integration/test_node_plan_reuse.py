"""Over real mTLS: a Query after its Preview reuses the Preview's plan and charges its cost."""

from __future__ import annotations

from support_node import NodeWorld, count_spec, ledger_size, node_stub, query_request

from node.server import RunningNode
from npcs.serde_ledger import query_response_from_proto
from npcs.serde_query import preview_from_proto, query_to_proto
from npcs.v1 import node_pb2 as pb

TIMEOUT = 30


def test_query_after_preview_plans_once_and_charges_the_previewed_cost(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    stats = node_server.engine.plans.stats
    spec = count_spec(rho="0.02")
    before, misses, hits = ledger_size(node_world), stats.misses, stats.hits
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        preview = preview_from_proto(
            stub.Preview(pb.PreviewRequest(query=query_to_proto(spec)), timeout=TIMEOUT)
        )
        answer = query_response_from_proto(
            stub.Query(query_request(spec, node_world.alice), timeout=TIMEOUT)
        )
    assert (stats.misses - misses, stats.hits - hits) == (1, 1)
    assert answer.release().cost_units == preview.cost_units == 20_000
    assert ledger_size(node_world) == before + 1


def test_a_query_without_preview_plans_afresh(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    stats = node_server.engine.plans.stats
    misses = stats.misses
    with node_stub(node_world, node_server.port, node_world.alice) as stub:
        stub.Query(query_request(count_spec(), node_world.alice), timeout=TIMEOUT)
    assert stats.misses == misses + 1
