"""`npcs audit` against a real node server on 127.0.0.1: sound ledgers pass, tampered fail.

Each test builds its own partnership (CA, node with synthetic incidents, analyst alice,
auditor audrey), charges a few queries as alice through the coordinator, then audits
as audrey. Tampering happens the way an insider would: straight in the node's SQLite.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_audit import ServedNode, served_node
from support_node import NodeWorld

from coordinator.audit.memory import open_audit_memory
from coordinator.audit.report import AuditReport
from coordinator.cli import cli
from coordinator.cli.audit import EXIT_AUDIT_FAILED
from coordinator.partnership import NodeEntry, Partnership, save_partnership

QUERIES = 3


@dataclass(frozen=True)
class Audited:
    served: ServedNode
    partnership: Partnership
    config: Path
    state_file: Path

    @property
    def world(self) -> NodeWorld:
        return self.served.world

    @property
    def node(self) -> NodeEntry:
        return self.served.entry

    def charge_queries(self, count: int) -> None:
        self.served.charge_queries(count)

    def audit(self, *nodes: NodeEntry) -> AuditReport:
        return self.served.audit(*nodes, state=self.state_file)

    def tamper(self, *statements: str) -> None:
        with sqlite3.connect(self.world.node.ledger_db) as connection:
            for statement in statements:
                connection.execute(statement)


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[Audited]:
    """A fresh node world, served on 127.0.0.1 port 0, with QUERIES charges by alice."""
    with served_node(tmp_path, queries=QUERIES) as served:
        partnership = served.partnership()
        config = tmp_path / "partnership.toml"
        save_partnership(partnership, config)
        yield Audited(served, partnership, config, tmp_path / "audit_checkpoints.sqlite")


def test_sound_ledger_passes_and_the_next_audit_proves_it_only_grew(audited: Audited) -> None:
    first = audited.audit()
    node = first.nodes[0]
    assert first.ok, node.problems
    assert (node.entries, node.checkpoint_size, node.previous_size) == (QUERIES, QUERIES, None)
    assert node.signed_requests_verified == QUERIES
    incidents = next(row for row in node.spending if row.dataset == "incidents")
    assert (incidents.charges, incidents.spent_rho) == (QUERIES, "0.03")
    assert open_audit_memory(audited.state_file).latest("demo", "county-a") is not None

    audited.charge_queries(1)
    second = audited.audit()
    assert second.ok, second.nodes[0].problems
    assert (second.nodes[0].previous_size, second.nodes[0].entries) == (QUERIES, QUERIES + 1)


def test_a_row_changed_in_sqlite_fails_the_audit_naming_the_entry(audited: Audited) -> None:
    audited.tamper("UPDATE entries SET purpose = 'nothing to see here' WHERE seq = 1")
    report = audited.audit()
    assert not report.ok
    problems = " ".join(report.nodes[0].problems)
    assert "do not hash to the root the node signed" in problems
    assert "first changed entry is 1" in problems


def test_a_lowered_charge_fails_the_audit(audited: Audited) -> None:
    """Rewriting a cost to hide spending breaks the root and the release's own record."""
    audited.tamper("UPDATE entries SET cost_units = 1 WHERE seq = 0")
    problems = " ".join(audited.audit().nodes[0].problems)
    assert "first changed entry is 0" in problems
    assert "the ledger charged 0.000001" in problems


def test_a_truncated_ledger_fails_against_the_remembered_checkpoint(audited: Audited) -> None:
    assert audited.audit().ok
    last = QUERIES - 1
    audited.tamper(
        f"DELETE FROM entries WHERE seq = {last}",
        f"DELETE FROM checkpoints WHERE size = {QUERIES}",
    )
    report = audited.audit()
    assert not report.ok
    assert any(
        f"shrank from {QUERIES} entries" in problem and "truncated" in problem
        for problem in report.nodes[0].problems
    )
    remembered = open_audit_memory(audited.state_file).latest("demo", "county-a")
    assert remembered is not None
    assert remembered.size == QUERIES, "a failed audit must keep the last good checkpoint"


def test_a_node_presenting_another_ledger_key_fails(audited: Audited) -> None:
    impostor = NodeEntry(
        name="county-a", address=audited.node.address, ledger_key_fingerprint="0" * 64
    )
    report = audited.audit(impostor)
    assert not report.ok
    assert "pins" in report.nodes[0].problems[0]


def test_cli_exits_nonzero_and_writes_a_report_naming_the_problem(
    audited: Audited, tmp_path: Path
) -> None:
    runner = CliRunner()
    arguments = [
        "audit",
        "--config",
        str(audited.config),
        "--identity",
        str(audited.world.auditor.root),
        "--state",
        str(audited.state_file),
    ]
    sound = runner.invoke(cli, [*arguments, "--out", str(tmp_path / "ok.md")])
    assert sound.exit_code == 0, sound.output
    assert "OK" in sound.output
    assert "county-a" in sound.output
    assert "all ledgers OK" in (tmp_path / "ok.md").read_text()

    audited.tamper("UPDATE entries SET analyst = 'mallory' WHERE seq = 2")
    failed = runner.invoke(cli, [*arguments, "--out", str(tmp_path / "failed.json")])
    assert failed.exit_code == EXIT_AUDIT_FAILED, failed.output
    assert "FAILED" in failed.output
    assert '"ok": false' in (tmp_path / "failed.json").read_text()
    assert "first changed entry is 2" in (tmp_path / "failed.json").read_text()


def test_cli_refuses_an_analyst_identity(audited: Audited) -> None:
    result = CliRunner().invoke(
        cli, ["audit", "--config", str(audited.config), "--state", str(audited.state_file)]
    )
    assert result.exit_code == 1
    assert "needs an auditor" in result.output


def test_cli_imports_an_earlier_json_memory_once_and_refuses_it_as_the_store(
    audited: Audited, tmp_path: Path
) -> None:
    """Upgrading auditors keep their evidence: the JSON file beside the store is imported."""
    assert audited.audit().ok
    remembered = open_audit_memory(audited.state_file).latest("demo", "county-a")
    assert remembered is not None
    legacy = tmp_path / "upgrade" / "audit_checkpoints.json"
    legacy.parent.mkdir()
    legacy.write_text(
        json.dumps(
            {
                "format": "npcs.audit-checkpoints.v1",
                "partnerships": {
                    "demo": {
                        "county-a": {
                            "origin": remembered.origin,
                            "size": remembered.size,
                            "root": remembered.root.hex(),
                            "signature": remembered.signature.hex(),
                            "key_fingerprint": remembered.key_fingerprint,
                            "seen_at": remembered.seen_at,
                        }
                    }
                },
            }
        )
    )
    arguments = ["audit", "--config", str(audited.config)]
    arguments += ["--identity", str(audited.world.auditor.root)]
    runner = CliRunner()
    refused = runner.invoke(cli, [*arguments, "--state", str(legacy)])
    assert refused.exit_code == 1, refused.output
    assert f"pass --state {legacy.with_suffix('.sqlite')}" in " ".join(refused.output.split())

    imported = runner.invoke(cli, [*arguments, "--state", str(legacy.with_suffix(".sqlite"))])
    assert imported.exit_code == 0, imported.output
    assert f"extends size {QUERIES} ({remembered.seen_at})" in imported.output
