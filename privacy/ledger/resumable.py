"""The node's self-check in two parts: a start-up check whose cost does not grow with the
ledger, and a background pass that re-verifies every entry once, resuming from a mark.

Before the first answer (`startup_check`, O(log n) indexed reads):
- the ledger names the pinned key;
- the last signed checkpoint covers exactly the stored entries, and its signature verifies;
- the last entry's stored bytes hash to its stored leaf (column and tree node);
- the root recomputed from the stored right-edge subtree hashes equals that checkpoint's;
- the verified-through mark (`privacy.ledger.verified_mark`) verifies, the stored tree
  still gives its root at its size, and no running total is below what it records.

After (`verify_next_chunk`, called until done): from the mark's size k, the same `Audit`
as `npcs-node ledger verify` over the next chunk: each entry re-hashed, each tree node
and checkpoint root recomputed, each checkpoint signature verified; on reaching the end,
no tree node beyond it and the running totals equal the sums. The caller then records
the new mark, so the next pass (or the next start) resumes there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy import tlog
from privacy.ledger.errors import LedgerFault
from privacy.ledger.range_check import check_range
from privacy.ledger.sqlschema import SELECT_ENTRY, connect, entry_from_row, is_busy, retry_busy
from privacy.ledger.verified_mark import MarkUnreadableError, VerifiedMark, load_mark
from privacy.ledger.verifier import (
    CHUNK_ENTRIES,
    Audit,
    AuditState,
    SelfCheckReport,
    last_checkpoint,
    ledger_size,
    read_chunk,
    stored_totals,
)


def _tree_changed(size: int) -> str:
    return f"the Merkle tree over the first {size} entries changed after they were verified"


def _stored_subtree(connection: sqlite3.Connection) -> tlog.RangeHash:
    def complete_subtree(start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        row = connection.execute(
            "SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, start >> level)
        ).fetchone()
        if row is None:
            raise LedgerFault(f"the Merkle tree lacks the node for entries {start}..{end - 1}")
        return bytes(row[0])

    return complete_subtree


def startup_check(connection: sqlite3.Connection, public_key: Ed25519PublicKey) -> SelfCheckReport:
    """What must hold before the first answer, in O(log n) reads of one snapshot."""
    state = AuditState()
    connection.execute("BEGIN")
    try:
        size, root = _startup_checks(connection, public_key, state)
    except (LedgerFault, MarkUnreadableError) as exc:
        state.add(str(exc))
        size, root = 0, tlog.EMPTY_ROOT
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise
        state.add(f"the ledger database cannot be read: {exc}")
        size, root = 0, tlog.EMPTY_ROOT
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        state.add(f"the ledger database cannot be read: {exc}")
        size, root = 0, tlog.EMPTY_ROOT
    finally:
        connection.execute("ROLLBACK")
    return SelfCheckReport(
        ok=not state.problems,
        problems=state.problems,
        size=size,
        root=root,
        first_bad_entry=state.first_bad_entry,
    )


def _startup_checks(
    connection: sqlite3.Connection, public_key: Ed25519PublicKey, state: AuditState
) -> tuple[int, bytes]:
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    origin = meta.get("origin", "")
    audit = Audit(state=state, public_key=public_key, origin=origin, verify_signatures=False)
    audit.check_meta(meta)
    size = ledger_size(connection)
    subtree = _stored_subtree(connection)
    if size > 0:
        row = connection.execute(SELECT_ENTRY + " WHERE seq = ?", (size - 1,)).fetchone()
        leaf = entry_from_row(row).leaf_hash()
        if leaf != bytes(row[-1]) or leaf != subtree(size - 1, size):
            state.entry_problem(size - 1, f"entry {size - 1} does not match its leaf hash")
    audit.frontier = tlog.MerkleFrontier.of_complete_subtrees(size, subtree)
    audit.finish(last_checkpoint(connection))
    mark = load_mark(connection, origin, public_key)
    if mark.size > size:
        state.add(
            f"the ledger has {size} entries but {mark.size} were verified before: "
            "entries were removed"
        )
    elif tlog.subtree_root(0, mark.size, subtree) != mark.root:
        state.add(_tree_changed(mark.size))
    totals = stored_totals(connection)
    for (scope, name), units in sorted(mark.totals.items()):
        if totals.get((scope, name), 0) < units:
            state.add(
                f"spent total for {scope} {name!r} is {totals.get((scope, name), 0)} units, "
                f"below the {units} units its first {mark.size} charges sum to"
            )
    return size, audit.frontier.root()


@dataclass(frozen=True)
class PassStep:
    """One chunk of the background pass: its problems, and the mark it earned."""

    problems: list[str]
    mark: VerifiedMark
    done: bool
    first_bad_entry: int | None = None


def verify_next_chunk(
    connection: sqlite3.Connection,
    public_key: Ed25519PublicKey,
    chunk_entries: int = CHUNK_ENTRIES,
) -> PassStep:
    """Verify the entries after the stored mark, one chunk, in one read snapshot."""
    state = AuditState()
    connection.execute("BEGIN")
    try:
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        origin = meta.get("origin", "")
        mark = load_mark(connection, origin, public_key)
        size = ledger_size(connection)
        stop = min(mark.size + chunk_entries, size)
        audit = Audit(
            state=state,
            public_key=public_key,
            origin=origin,
            verify_signatures=True,
            frontier=tlog.MerkleFrontier.of_complete_subtrees(
                mark.size, _stored_subtree(connection)
            ),
            spent=dict(mark.totals),
        )
        if audit.frontier.root() != mark.root:
            state.add(_tree_changed(mark.size))
        elif audit.add_chunk(
            read_chunk(connection, mark.size, stop),
            check_range(connection, origin, tlog.raw_public_key(public_key), mark.size, stop),
        ):
            audit.report_bad_signatures()
            if stop == size:
                _check_end(connection, audit, size)
        new_mark = VerifiedMark(origin, audit.frontier.size, audit.frontier.root(), audit.spent)
    except (LedgerFault, MarkUnreadableError) as exc:
        state.add(str(exc))
        return PassStep(state.problems, VerifiedMark(""), done=True)
    finally:
        connection.execute("ROLLBACK")
    return PassStep(state.problems, new_mark, stop == size, state.first_bad_entry)


def _check_end(connection: sqlite3.Connection, audit: Audit, size: int) -> None:
    """At the end of the snapshot: the last checkpoint covers it, no tree node lies
    beyond it, and the running totals equal the sums of the charges."""
    audit.finish(last_checkpoint(connection))
    for level in range(size.bit_length() + 1):
        beyond = connection.execute(
            "SELECT idx FROM tree_nodes WHERE level = ? AND idx >= ? LIMIT 1",
            (level, size >> level),
        ).fetchone()
        if beyond is not None:
            audit.state.add(
                f"the Merkle tree has a stored node ({level}, {beyond[0]}) "
                f"beyond its {size} entries"
            )
    beyond_levels = connection.execute(
        "SELECT level FROM tree_nodes WHERE level > ? LIMIT 1", (size.bit_length(),)
    ).fetchone()
    if beyond_levels is not None:
        audit.state.add(f"the Merkle tree has a stored node at level {beyond_levels[0]}, too high")
    audit.check_totals(stored_totals(connection))


def run_pass(
    path: Path,
    public_key: Ed25519PublicKey,
    record: Callable[[VerifiedMark], None],
    should_stop: Callable[[], bool] | None = None,
) -> SelfCheckReport:
    """Verify chunk after chunk from the mark to the end on a connection of its own,
    calling `record` with each new mark; stop at the first problem (or when asked)."""
    connection = connect(path)
    try:
        while True:
            step = retry_busy(lambda: verify_next_chunk(connection, public_key), path)
            if step.problems:
                return SelfCheckReport(
                    ok=False, problems=step.problems, first_bad_entry=step.first_bad_entry
                )
            record(step.mark)
            if step.done or (should_stop is not None and should_stop()):
                return SelfCheckReport(
                    ok=True, problems=[], size=step.mark.size, root=step.mark.root
                )
    finally:
        connection.close()
