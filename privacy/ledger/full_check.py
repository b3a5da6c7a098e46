"""`npcs-node ledger verify`'s check of a whole ledger, over one consistent snapshot.

It reads the ledger in one read transaction, in chunks of entries. Each chunk's range
check (`privacy.ledger.range_check`: rows re-hashed, charges summed, checkpoint
signatures verified) needs no other entry, so with a process pool every chunk is
submitted at once and each worker reads its range from the ledger file itself; the
`Audit` (`privacy.ledger.verifier`) folds the results in, in order, from this snapshot,
then checks what only the whole ledger shows (node count, last checkpoint, remembered
checkpoints beyond the end, totals).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy.ledger.errors import LedgerFault
from privacy.ledger.range_check import RangeCheck, check_range, check_range_in_file
from privacy.ledger.sqlschema import is_busy
from privacy.ledger.verifier import (
    CHUNK_ENTRIES,
    Audit,
    AuditState,
    Progress,
    SelfCheckReport,
    last_checkpoint,
    ledger_size,
    read_chunk,
    stored_totals,
)
from privacy.tlog import SignedCheckpoint, raw_public_key


def verify_ledger(
    connection: sqlite3.Connection,
    path: Path,
    public_key: Ed25519PublicKey,
    remembered: Sequence[SignedCheckpoint],
    all_signatures: bool,
    *,
    pool: Executor | None = None,
    progress: Progress | None = None,
) -> SelfCheckReport:
    """Check the ledger on `connection`, the file at `path` (see `LedgerReader.verify`).
    A busy database raises sqlite3.OperationalError for the caller to retry; any other
    unreadable database is reported as a problem. `pool` checks chunks on other cores."""
    state = AuditState()
    # One read transaction: a consistent snapshot even while other processes write.
    connection.execute("BEGIN")
    try:
        return _audit(
            connection, path, state, public_key, remembered, all_signatures, pool, progress
        )
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise
        state.add(f"the ledger database cannot be read: {exc}")
    except (sqlite3.DatabaseError, LedgerFault, ValueError, TypeError, KeyError) as exc:
        state.add(f"the ledger database cannot be read: {exc}")
    finally:
        connection.execute("ROLLBACK")
    return SelfCheckReport(ok=False, problems=state.problems, first_bad_entry=state.first_bad_entry)


def _audit(  # noqa: PLR0917 - the full check's inputs
    connection: sqlite3.Connection,
    path: Path,
    state: AuditState,
    public_key: Ed25519PublicKey,
    remembered: Sequence[SignedCheckpoint],
    all_signatures: bool,
    pool: Executor | None,
    progress: Progress | None,
) -> SelfCheckReport:
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    origin = meta.get("origin", "")
    size = ledger_size(connection)
    ranges = [
        (start, min(start + CHUNK_ENTRIES, size)) for start in range(0, max(size, 1), CHUNK_ENTRIES)
    ]
    raw_key = raw_public_key(public_key) if all_signatures else None
    # The workers start first: SQLite's integrity check keeps this process busy a while.
    futures = None
    if pool is not None:
        futures = [
            pool.submit(check_range_in_file, str(path), origin, raw_key, start, stop)
            for start, stop in ranges
        ]
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchall()
        if [tuple(row) for row in integrity] != [("ok",)]:
            state.add(f"SQLite integrity check failed: {integrity[0][0]}")
        audit = Audit(
            state=state,
            public_key=public_key,
            origin=origin,
            verify_signatures=all_signatures,
            remembered={cp.checkpoint.size: cp for cp in remembered},
        )
        audit.check_meta(meta)
        (count,) = connection.execute("SELECT COUNT(*) FROM entries").fetchone()
        if count != size:
            state.add(f"the ledger has {count} entries but its sequence numbers run to {size - 1}")
        checks = _range_checks(connection, origin, raw_key, ranges, futures)
        for (start, stop), checked in zip(ranges, checks, strict=False):
            if not audit.add_chunk(read_chunk(connection, start, stop), checked):
                break
            if progress is not None:
                progress(audit.frontier.size, size)
    finally:
        for future in futures or ():
            future.cancel()
    audit.report_bad_signatures()
    (stored_nodes,) = connection.execute("SELECT COUNT(*) FROM tree_nodes").fetchone()
    if stored_nodes != audit.produced_nodes:
        state.add(
            f"the Merkle tree has {stored_nodes} stored nodes, expected {audit.produced_nodes}"
        )
    audit.finish(last_checkpoint(connection))
    audit.check_totals(stored_totals(connection))
    return SelfCheckReport(
        ok=not state.problems,
        problems=state.problems,
        size=audit.frontier.size,
        root=audit.frontier.root(),
        first_bad_entry=state.first_bad_entry,
    )


def _range_checks(
    connection: sqlite3.Connection,
    origin: str,
    raw_key: bytes | None,
    ranges: list[tuple[int, int]],
    futures: list[Future[RangeCheck]] | None,
) -> Iterator[RangeCheck]:
    """The range checks of `ranges`, in order: from the pool's `futures` (each worker
    reads its range from the ledger file), else one by one on `connection`."""
    if futures is None:
        return (check_range(connection, origin, raw_key, start, stop) for start, stop in ranges)
    return (future.result() for future in futures)
