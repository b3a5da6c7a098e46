"""Issue 11, the auditor: a node that cannot be reached is UNREACHABLE (its own exit code,
spending unknown), and a node that is NOT_SERVING because its spent totals were tampered
with FAILS. Real node over mTLS on 127.0.0.1, real SQLite tampering."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_audit import ServedNode, served_node

from coordinator.audit.render import summary_lines
from coordinator.cli import cli
from coordinator.cli.audit import EXIT_AUDIT_FAILED, EXIT_UNREACHABLE
from coordinator.partnership import NodeEntry, Partnership, save_partnership


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedNode]:
    with served_node(tmp_path, queries=2) as served:
        yield served


def closed_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_an_unreachable_node_is_unreachable_with_spending_unknown(
    served: ServedNode, tmp_path: Path
) -> None:
    down = NodeEntry(name="county-down", address=closed_address(), ledger_key_fingerprint="1" * 64)
    report = served.audit(served.entry, down, state=tmp_path / "memory.sqlite")
    verdicts = {node.node: node for node in report.nodes}
    assert verdicts["county-a"].result == "OK"
    assert verdicts["county-a"].spending_known
    assert verdicts["county-down"].result == "UNREACHABLE"
    assert not verdicts["county-down"].spending_known
    assert report.failed_nodes == ()
    assert report.unreachable_nodes == ("county-down",)
    text = "\n".join(summary_lines(report))
    assert "nothing spent" not in text
    assert "spent rho unknown" in text
    assert "UNREACHABLE (not audited): county-down" in text

    config = tmp_path / "partnership.toml"
    save_partnership(
        Partnership(name="demo", identity=served.world.auditor.identity_files(), nodes=(down,)),
        config,
    )
    result = CliRunner().invoke(
        cli, ["audit", "--config", str(config), "--state", str(tmp_path / "cli.sqlite")]
    )
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert EXIT_UNREACHABLE != EXIT_AUDIT_FAILED


def test_a_node_not_serving_after_its_totals_were_tampered_with_fails(
    served: ServedNode, tmp_path: Path
) -> None:
    assert served.audit(state=tmp_path / "before.sqlite").ok
    with sqlite3.connect(served.world.node.ledger_db) as connection:
        connection.execute("UPDATE spent_totals SET units = 0")
    assert not served.server.engine.run_self_check()  # the node now reports NOT_SERVING
    report = served.audit(state=tmp_path / "after.sqlite")
    node = report.nodes[0]
    assert node.result == "FAILED"
    assert any("NOT_SERVING" in problem for problem in node.problems)
    assert report.failed_nodes == ("county-a",)
