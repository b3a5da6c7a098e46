"""Where the coordinator's CPU per node goes during a fan-out (used by bench_fanout.py).

Measured one node at a time, for a query every node has already recorded (a replay:
the node side is cheap), with `time.process_time` (this process, all its threads:
gRPC's C core included).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from coordinator.client import ClientCredentials, NodeClient
from coordinator.partnership import NodeEntry
from privacy.query import QuerySpec

QUERY_COST_UNITS = 10_000
"""What `count_spec()` (rho 0.01) costs: the signed Query of a replay authorises it again."""


def cpu_breakdown(
    credentials: ClientCredentials, entries: Sequence[NodeEntry], spec: QuerySpec
) -> dict[str, float]:
    """Where the coordinator's CPU per node goes (replayed `spec`, one node at a time):
    a new channel with its mTLS handshake and one Describe, against Describe, the Preview
    with the description, and the signed Query each on a channel already open."""
    cpu: dict[str, float] = {}
    started = time.process_time()
    for entry in entries:
        with NodeClient(entry, credentials) as client:
            client.describe()
    cpu["new_channel_and_describe_ms"] = time.process_time() - started
    clients = [NodeClient(entry, credentials) for entry in entries]
    try:
        for client in clients:
            client.describe()  # connected: the handshakes are done
        steps: dict[str, Callable[[NodeClient], object]] = {
            "describe_ms": lambda client: client.describe(),
            "preview_with_description_ms": lambda client: client.describe_and_preview(spec),
            "signed_query_ms": lambda client: client.query(spec, QUERY_COST_UNITS),
        }
        for name, step in steps.items():
            started = time.process_time()
            for client in clients:
                step(client)
            cpu[name] = time.process_time() - started
    finally:
        for client in clients:
            client.close()
    per_node = {name: seconds * 1000 / len(entries) for name, seconds in cpu.items()}
    per_node["handshake_ms"] = per_node["new_channel_and_describe_ms"] - per_node["describe_ms"]
    return {f"cpu_per_node_{name}": value for name, value in per_node.items()}
