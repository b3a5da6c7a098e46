"""Shared test support: one real node on a fixed port, and its analyst's and auditor's
command lines (the real `npcs` CLI over mTLS), for the rollback and reset tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from support_node import NODE_NAME, NodeWorld, make_node_world

from coordinator.checkpoints import CheckpointStore, RememberedCheckpoint
from coordinator.cli import cli
from coordinator.partnership import NodeEntry, Partnership, save_partnership
from node.cli import cli as node_cli
from node.layout import NodePaths
from node.server import ServerOptions, running_node
from privacy import tlog
from privacy.ledger.reader import LedgerReader


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Clients:
    """One node on a fixed port, and its analyst's and auditor's command lines."""

    world: NodeWorld
    port: int
    config: Path
    data_dir: Path
    audit_state: Path

    @classmethod
    def build(cls, root: Path) -> Clients:
        world = make_node_world(root / "world", children=20_000)
        port = _free_port()
        entry = NodeEntry(
            name=NODE_NAME,
            address=f"127.0.0.1:{port}",
            ledger_key_fingerprint=tlog.key_fingerprint(world.ledger_public_key()),
        )
        config = root / "partnership.toml"
        save_partnership(
            Partnership(name="demo", identity=world.alice.identity_files(), nodes=(entry,)),
            config,
        )
        return cls(world, port, config, root / "analyst-data", root / "audit.sqlite")

    @property
    def paths(self) -> NodePaths:
        return self.world.node

    @contextmanager
    def serving(self) -> Iterator[None]:
        with running_node(self.paths.root, ServerOptions(port=self.port)):
            yield

    def _run(self, *args: str) -> Result:
        runner = CliRunner(
            env={"NPCS_CONFIG": str(self.config), "NPCS_DATA_DIR": str(self.data_dir)}
        )
        return runner.invoke(cli, list(args), catch_exceptions=False)

    def query(self) -> Result:
        return self._run("query", "count", "incidents", "--rho", "0.01", "--purpose", "loop")

    def answer_queries(self, count: int) -> None:
        """`count` queries, each answered (so charged), while the node serves."""
        for _ in range(count):
            answered = self.query()
            assert answered.exit_code == 0, answered.output

    def nodes(self) -> Result:
        return self._run("nodes")

    def nodes_forgetting(self, node: str) -> Result:
        return self._run("nodes", "--forget-checkpoint", node)

    def audit(self, *args: str) -> Result:
        return self._run(
            "audit",
            "--identity",
            str(self.world.auditor.root),
            "--state",
            str(self.audit_state),
            *args,
        )

    def audit_remembers(self) -> RememberedCheckpoint | None:
        """The auditor's remembered checkpoint of the node."""
        return CheckpointStore(self.audit_state).latest("demo", NODE_NAME)

    def reset_ledger(self) -> None:
        """`npcs-node ledger reset` on the stopped node, as its operator would."""
        reset = CliRunner().invoke(
            node_cli, ["ledger", "reset", str(self.paths.root), "--i-understand-this-is-recorded"]
        )
        assert reset.exit_code == 0, reset.output

    def ledger_size(self) -> int:
        with LedgerReader.open_existing(self.paths.ledger_db) as reader:
            return reader.size()
