"""Issue 11, defect 3 (client side): every client catches a ledger that went back.

A root attacker rolls a node's ledger back (truncate by SQL, restore an older copy,
delete it, or fork it with the node's own key until it is longer than before) and also
removes the high-water marker, so the node starts anyway. The analyst and the auditor
remember the node's checkpoint from before; the next `npcs nodes`, `npcs query` and
`npcs audit` must each refuse the node with a non-zero exit, every round. Real node
servers over mTLS on 127.0.0.1, the real CLI, real SQLite ledgers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from support_clients import Clients
from support_node import NODE_NAME, count_spec
from support_rollback import (
    copy_ledger,
    delete_ledger,
    forge_entries,
    put_back,
    remove_high_water_marker,
    truncate_by_sql,
)

from coordinator.checkpoints import RememberedCheckpoint, check_continuity
from coordinator.cli.audit import EXIT_AUDIT_FAILED
from coordinator.cli.nodes import EXIT_LEDGER_UNTRUSTED as NODES_EXIT_UNTRUSTED
from coordinator.cli.query import EXIT_LEDGER_UNTRUSTED as QUERY_EXIT_UNTRUSTED
from coordinator.client import ClientCredentials, NodeClient, pinned_ledger_key
from coordinator.partnership import NodeEntry
from node.layout import NodePaths
from privacy import tlog
from privacy.ledger.reader import LedgerReader

ROUNDS = 3
"""Each attack is repeated on a fresh partnership this many times: caught every time."""


Step = Callable[[NodePaths, Path], None]


def _nothing(_paths: NodePaths, _backup: Path) -> None:
    return None


def _back_up(paths: NodePaths, backup: Path) -> None:
    copy_ledger(paths, backup)


def _truncate(paths: NodePaths, _backup: Path) -> None:
    truncate_by_sql(paths)


def _restore(paths: NodePaths, backup: Path) -> None:
    put_back(backup, paths)


def _delete(paths: NodePaths, _backup: Path) -> None:
    delete_ledger(paths)


def _fork_past_the_seen_size(paths: NodePaths, backup: Path) -> None:
    with LedgerReader.open_existing(paths.ledger_db) as reader:
        seen = reader.size()
    put_back(backup, paths)
    assert forge_entries(paths, 3) > seen, "the fork must grow past the remembered size"


@dataclass(frozen=True)
class Attack:
    before_seen: Step
    """Done before the clients see the node's honest ledger (e.g. a backup)."""
    after_seen: Step
    """The rollback itself, after the clients remembered the honest checkpoint."""
    kind: str
    """The word every client's refusal must use."""


ATTACKS = {
    "truncate-by-sql": Attack(_nothing, _truncate, "shrank"),
    "restore-older-copy": Attack(_back_up, _restore, "shrank"),
    "delete-ledger": Attack(_nothing, _delete, "shrank"),
    "fork": Attack(_back_up, _fork_past_the_seen_size, "forked"),
}


def _refused(result: Result, exit_code: int, kind: str) -> bool:
    return (
        result.exit_code == exit_code
        and NODE_NAME in result.output
        and kind in result.output
        and "Traceback" not in result.output
    )


def _one_round(root: Path, attack: Attack) -> dict[str, bool]:
    """Build, let the clients see the honest ledger, roll back, restart: who caught it?"""
    clients = Clients.build(root)
    backup = root / "backup.sqlite"
    with clients.serving():
        assert clients.query().exit_code == 0
    attack.before_seen(clients.paths, backup)
    with clients.serving():
        clients.answer_queries(2)
        assert clients.nodes().exit_code == 0
        audited = clients.audit()
        assert audited.exit_code == 0, audited.output
    seen_size = clients.ledger_size()
    attack.after_seen(clients.paths, backup)
    remove_high_water_marker(clients.paths)
    with clients.serving():  # the node starts on the rolled-back ledger
        caught = {
            "npcs nodes": _refused(clients.nodes(), NODES_EXIT_UNTRUSTED, attack.kind),
            "npcs query": _refused(clients.query(), QUERY_EXIT_UNTRUSTED, attack.kind),
            "npcs audit": _refused(clients.audit(), EXIT_AUDIT_FAILED, attack.kind),
            # A refusal is not forgotten: the memory still holds the honest checkpoint.
            "npcs query again": _refused(clients.query(), QUERY_EXIT_UNTRUSTED, attack.kind),
        }
    if attack.after_seen is not _fork_past_the_seen_size:
        assert clients.ledger_size() < seen_size
    return caught


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_client_refuses_a_rolled_back_node_every_time(tmp_path: Path, name: str) -> None:
    detected: dict[str, int] = {}
    for round_number in range(ROUNDS):
        caught = _one_round(tmp_path / f"round-{round_number}", ATTACKS[name])
        for client, refused in caught.items():
            detected[client] = detected.get(client, 0) + int(refused)
    figure = ", ".join(f"{client} {count} of {ROUNDS}" for client, count in detected.items())
    print(f"rollback loop, {name}: detected by {figure}")
    assert detected == dict.fromkeys(detected, ROUNDS), figure


def test_a_forked_answer_is_caught_on_the_query_itself(tmp_path: Path) -> None:
    """The receipt's own proof: a Query answered from a fork that has grown past the
    remembered size does not extend the remembered checkpoint (the node has charged it;
    the client withholds it)."""
    clients = Clients.build(tmp_path)
    alice = ClientCredentials.load(clients.world.alice.identity_files())
    entry = NodeEntry(
        NODE_NAME,
        f"127.0.0.1:{clients.port}",
        tlog.key_fingerprint(clients.world.ledger_public_key()),
    )
    with clients.serving():
        assert clients.query().exit_code == 0
    copy_ledger(clients.paths, tmp_path / "backup.sqlite")
    with clients.serving(), NodeClient(entry, alice) as client:
        spec = count_spec()
        description, preview = client.describe_and_preview(spec)
        key = pinned_ledger_key(description, entry)
        honest = client.query(spec, preview.cost_units, remembered_size=1)
        assert honest.consistency is not None
        assert honest.consistency.old_size == 1
        remembered = RememberedCheckpoint.seen(
            NODE_NAME, honest.checkpoint, key_fingerprint=entry.ledger_key_fingerprint, seen_at="t"
        )
        assert check_continuity(NODE_NAME, None, honest.checkpoint, honest.consistency, key) is None
    _fork_past_the_seen_size(clients.paths, tmp_path / "backup.sqlite")
    remove_high_water_marker(clients.paths)
    with clients.serving(), NodeClient(entry, alice) as client:
        spec = count_spec()
        _, preview = client.describe_and_preview(spec)
        forked = client.query(spec, preview.cost_units, remembered_size=remembered.size)
    assert forked.checkpoint.size > remembered.size
    assert forked.verify(key), "the fork's receipt itself is validly signed"
    untrusted = check_continuity(NODE_NAME, remembered, forked.checkpoint, forked.consistency, key)
    assert untrusted is not None
    assert untrusted.kind == "forked"
    assert "rewritten or forked" in untrusted.message()


def test_after_a_recorded_reset_the_analyst_accepts_the_new_ledger_only_on_purpose(
    tmp_path: Path,
) -> None:
    clients = Clients.build(tmp_path)
    with clients.serving():
        clients.answer_queries(2)
    clients.reset_ledger()
    with clients.serving():
        assert _refused(clients.query(), QUERY_EXIT_UNTRUSTED, "shrank")
        forgotten = clients.nodes_forgetting(NODE_NAME)
        assert forgotten.exit_code == 0, forgotten.output
        assert f"forgot node {NODE_NAME}'s checkpoint of 2 entries" in forgotten.output
        accepted = clients.query()
        assert accepted.exit_code == 0, accepted.output
        assert clients.nodes().exit_code == 0
        unknown = clients.nodes_forgetting("county-z")
    assert unknown.exit_code == 2
    assert "'county-z' is not a node of partnership 'demo'" in unknown.output


def test_the_auditor_accepts_a_reset_that_names_the_remembered_checkpoint(
    tmp_path: Path,
) -> None:
    clients = Clients.build(tmp_path)
    with clients.serving():
        clients.answer_queries(2)
        assert clients.audit().exit_code == 0
    old = clients.audit_remembers()
    assert old is not None
    assert old.size == 2
    clients.reset_ledger()
    with clients.serving():
        assert _refused(clients.audit(), EXIT_AUDIT_FAILED, "shrank")
        record = tmp_path / "accepted.md"
        accepted = clients.audit("--accept-reset", NODE_NAME, "--out", str(record))
        assert accepted.exit_code == 0, accepted.output
        for said in (accepted.output, record.read_text(encoding="utf-8")):
            assert "accepted: ledger reset accepted: the remembered checkpoint of 2 entries" in said
            assert old.root.hex() in said
        new = clients.audit_remembers()
        assert new is not None
        assert (new.size, new.origin) == (1, old.origin)
        assert new.root != old.root
        assert clients.nodes_forgetting(NODE_NAME).exit_code == 0  # the analyst, told
        assert clients.query().exit_code == 0
        again = clients.audit()
    assert again.exit_code == 0, again.output
    assert "extends size 1" in again.output


def test_the_auditor_refuses_a_reset_that_names_another_checkpoint(tmp_path: Path) -> None:
    clients = Clients.build(tmp_path)
    with clients.serving():
        clients.answer_queries(2)
        assert clients.audit().exit_code == 0
        not_reset = clients.audit("--accept-reset", NODE_NAME)
        assert _refused(not_reset, EXIT_AUDIT_FAILED, "does not start with a genesis entry")
        clients.answer_queries(1)  # entry 2: after the audit, named by the reset
    remembered = clients.audit_remembers()
    clients.reset_ledger()
    with clients.serving():
        refused = clients.audit("--accept-reset", NODE_NAME)
        unknown = clients.audit("--accept-reset", "county-z")
    assert _refused(refused, EXIT_AUDIT_FAILED, "--accept-reset refused")
    assert "names a checkpoint of 3 entries" in refused.output
    assert clients.audit_remembers() == remembered
    assert unknown.exit_code == 2
    assert "'county-z' is not a node of partnership 'demo'" in unknown.output
    fresh = Clients(clients.world, clients.port, clients.config, clients.data_dir, tmp_path / "n")
    nothing = fresh.audit("--accept-reset", NODE_NAME)
    assert nothing.exit_code == 2
    assert "no checkpoint of node" in nothing.output
