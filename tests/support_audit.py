"""Shared test support for the auditor: one real node served on 127.0.0.1 (port 0), its
ledger holding charges made by analyst alice through the coordinator, and audits of it
as auditor audrey with a remembered-checkpoint store of the test's choosing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support_node import NODE_NAME, PARTNERSHIP, NodeWorld, count_spec, make_node_world

from coordinator.audit.memory import open_audit_memory
from coordinator.audit.report import AuditReport
from coordinator.audit.run import audit_partnership
from coordinator.client import ClientCredentials
from coordinator.fanout import FanoutSettings, query_node
from coordinator.partnership import NodeEntry, Partnership
from node.server import RunningNode, running_node
from privacy import tlog

AUDITOR_URI = f"npcs://{PARTNERSHIP}/auditor/audrey"


@dataclass(frozen=True)
class ServedNode:
    """A node world whose node is serving, and its entry as partnership.toml pins it."""

    world: NodeWorld
    server: RunningNode
    entry: NodeEntry

    def charge_queries(self, count: int) -> None:
        """`count` small counts as alice, each answered (so charged in the ledger)."""
        alice = ClientCredentials.load(self.world.alice.identity_files())
        for _ in range(count):
            result = query_node(self.entry, alice, count_spec(rho="0.01"), FanoutSettings())
            assert result.answer is not None, result.problem

    def partnership(self, *nodes: NodeEntry) -> Partnership:
        """The partnership of `nodes` (default: this node), with alice's identity."""
        return Partnership(
            name=PARTNERSHIP,
            identity=self.world.alice.identity_files(),
            nodes=nodes or (self.entry,),
        )

    def audit(self, *nodes: NodeEntry, state: Path) -> AuditReport:
        """Audit `nodes` (default: this node) as audrey, remembering in `state`."""
        return audit_partnership(
            self.partnership(*nodes),
            ClientCredentials.load(self.world.auditor.identity_files()),
            auditor=AUDITOR_URI,
            memory=open_audit_memory(state),
        )


@contextmanager
def served_node(root: Path, *, queries: int) -> Iterator[ServedNode]:
    """A fresh node world under `root`, served while the block runs, with `queries`
    charges by alice already in its ledger."""
    world = make_node_world(root / "world", children=50_000)
    with running_node(world.node.root) as server:
        entry = NodeEntry(
            name=NODE_NAME,
            address=f"127.0.0.1:{server.port}",
            ledger_key_fingerprint=tlog.key_fingerprint(world.ledger_public_key()),
        )
        served = ServedNode(world, server, entry)
        served.charge_queries(queries)
        yield served
