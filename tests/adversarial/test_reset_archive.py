"""A recorded ledger reset after queries the auditor has not seen: the archived ledger
must bridge the remembered checkpoint and the one the genesis entry names.

The node answers queries after the auditor's last audit, then its operator runs
`npcs-node ledger reset`, so the genesis entry names a later checkpoint (the high-water
marker's) than the auditor remembers. `npcs audit --accept-reset NODE` alone refuses;
with `--archived-ledger FILE` (a copy of the archived ledger) it accepts, and reports
what the archive spent; a tampered, older, unrelated or rewritten archive is refused and
nothing is replaced. Real node servers over mTLS on 127.0.0.1, the real CLI, real SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from support_clients import Clients
from support_node import NODE_NAME
from support_rollback import (
    archived_ledger,
    copy_ledger,
    copy_ledger_file,
    edit_entry,
    forge_entries,
    ledger_under_another_key,
    put_back,
    remove_high_water_marker,
    truncate_by_sql,
)

from coordinator.cli.audit import EXIT_AUDIT_FAILED
from privacy.budget import rho_to_units_ceil

QUERY_RHO = "0.01"
"""What each of `Clients.query`'s queries costs."""


def _refused(result: Result, reason: str) -> None:
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert "--accept-reset refused, the remembered checkpoint is kept" in result.output
    assert reason in result.output, result.output
    assert "Traceback" not in result.output


def _queried_after_the_audit_then_reset(tmp_path: Path) -> tuple[Clients, Path]:
    """Two queries, an audit, one more query, a reset; the operator's copy of the
    archived ledger."""
    clients = Clients.build(tmp_path)
    with clients.serving():
        clients.answer_queries(2)
        assert clients.audit().exit_code == 0
        clients.answer_queries(1)
    clients.reset_ledger()
    handed_over = tmp_path / "handed-over.sqlite"
    copy_ledger_file(archived_ledger(clients.paths), handed_over)
    return clients, handed_over


def test_the_archived_ledger_lets_the_auditor_accept_a_reset_after_unseen_queries(
    tmp_path: Path,
) -> None:
    clients, handed_over = _queried_after_the_audit_then_reset(tmp_path)
    old = clients.audit_remembers()
    assert old is not None
    assert old.size == 2
    record = tmp_path / "accepted.json"
    with clients.serving():
        alone = clients.audit("--accept-reset", NODE_NAME)
        _refused(alone, "names a checkpoint of 3 entries")
        assert "--archived-ledger FILE" in alone.output
        assert clients.audit_remembers() == old
        accepted = clients.audit(
            "--accept-reset", NODE_NAME, "--archived-ledger", str(handed_over), "--out", str(record)
        )
        assert accepted.exit_code == 0, accepted.output
        assert "ledger reset accepted: the remembered checkpoint of 2 entries" in accepted.output
        assert f"is extended by the archived ledger {handed_over} (3 entries" in accepted.output
        assert old.root.hex() in accepted.output
        assert "spent before the reset: child 0.03/10" in accepted.output
        new = clients.audit_remembers()
        assert new is not None
        assert (new.size, new.origin) == (1, old.origin)
        assert clients.nodes_forgetting(NODE_NAME).exit_code == 0  # the analyst, told
        clients.answer_queries(1)
        again = clients.audit()
    assert again.exit_code == 0, again.output
    assert "extends size 1" in again.output
    (node,) = json.loads(record.read_text(encoding="utf-8"))["nodes"]
    assert node["accepted_reset"].startswith("ledger reset accepted")
    three_queries = 3 * rho_to_units_ceil(QUERY_RHO)
    before = {row["dataset"]: row for row in node["spent_before_reset"]}
    assert (before["incidents"]["charges"], before["incidents"]["spent_units"]) == (
        3,
        three_queries,
    )
    (child,) = [row for row in node["unit_kind_spent_before_reset"] if row["unit_kind"] == "child"]
    assert (child["charges"], child["spent_units"]) == (3, three_queries)
    assert not [warning for warning in node["warnings"] if "archived ledger" in warning]


def test_a_tampered_older_or_unrelated_archive_is_refused_and_nothing_replaced(
    tmp_path: Path,
) -> None:
    clients = Clients.build(tmp_path)
    older = tmp_path / "older.sqlite"
    with clients.serving():
        clients.answer_queries(2)
        assert clients.audit().exit_code == 0
        copy_ledger(clients.paths, older)  # the ledger as audited, before the next query
        clients.answer_queries(1)
    clients.reset_ledger()
    remembered = clients.audit_remembers()
    tampered = tmp_path / "tampered.sqlite"
    copy_ledger_file(archived_ledger(clients.paths), tampered)
    edit_entry(tampered, 1)
    unrelated = tmp_path / "unrelated.sqlite"
    ledger_under_another_key(clients.paths, unrelated, 3)
    not_a_ledger = tmp_path / "notes.sqlite"
    not_a_ledger.write_text("the ledger, as the operator remembers it\n", encoding="utf-8")
    reasons = {
        tampered: "does not verify with the node's pinned ledger key",
        older: "does not hold the checkpoint the genesis entry names (3 entries",
        unrelated: "does not verify with the node's pinned ledger key",
        not_a_ledger: "cannot be read as a ledger",
    }
    with clients.serving():
        for archive, reason in reasons.items():
            refused = clients.audit("--accept-reset", NODE_NAME, "--archived-ledger", str(archive))
            _refused(refused, reason)
            assert clients.audit_remembers() == remembered
    lone = clients.audit("--archived-ledger", str(older))
    assert lone.exit_code == 2
    assert "--archived-ledger needs exactly one --accept-reset NODE" in lone.output


def _fork_with_the_nodes_key(clients: Clients, backup: Path) -> None:
    put_back(backup, clients.paths)
    assert forge_entries(clients.paths, 2) == 3, "the fork grows past the remembered size"


def _truncate(clients: Clients, _backup: Path) -> None:
    truncate_by_sql(clients.paths)


@pytest.mark.parametrize(
    ("rollback", "reasons"),
    [
        (
            _fork_with_the_nodes_key,
            ("the first 2 entries of the archived ledger", "rewritten before the reset"),
        ),
        (_truncate, ("stops at 0 entries, before the remembered", "entries were lost")),
    ],
    ids=["forked", "truncated"],
)
def test_an_archive_rolled_back_before_the_reset_is_refused(
    tmp_path: Path, rollback: Callable[[Clients, Path], None], reasons: tuple[str, str]
) -> None:
    """Root rolls the ledger back and removes the marker, then resets: the genesis names
    the rolled-back ledger's checkpoint, which its archive holds and verifies."""
    clients = Clients.build(tmp_path)
    backup = tmp_path / "backup.sqlite"
    with clients.serving():
        clients.answer_queries(1)
        copy_ledger(clients.paths, backup)
        clients.answer_queries(1)
        assert clients.audit().exit_code == 0
    remembered = clients.audit_remembers()
    rollback(clients, backup)
    remove_high_water_marker(clients.paths)
    clients.reset_ledger()
    archive = tmp_path / "archive.sqlite"
    copy_ledger_file(archived_ledger(clients.paths), archive)
    with clients.serving():
        refused = clients.audit("--accept-reset", NODE_NAME, "--archived-ledger", str(archive))
    for reason in reasons:
        _refused(refused, reason)
    assert clients.audit_remembers() == remembered
