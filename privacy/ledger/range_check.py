"""The part of a full ledger check that needs no other entry: re-hash each stored row and
verify each stored checkpoint signature, over one range of entries.

Ed25519 verification (one signed checkpoint per entry) and re-encoding the rows are
nearly all of `ledger verify`'s work, and neither depends on the Merkle tree, so ranges
are checked side by side: on a process pool, each worker reads its range from the
ledger file itself (no rows are pickled between processes) and returns 32 bytes per
entry. The sequential part (`privacy.ledger.verifier.Audit`: tree nodes, roots, totals)
uses what a range check returns and ties it to its own read snapshot: the recomputed
leaf hashes must equal the stored ones it reads, and the digest of the checkpoint rows
whose signatures were verified must equal the digest of the rows it reads, so a row
that changed between the two reads is reported, never silently mixed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacy import tlog
from privacy.ledger.entry import ENTRY_COLUMNS, spent_total_keys_for
from privacy.ledger.row_leaf import row_leaf_data
from privacy.ledger.signature_batch import bad_signatures
from privacy.ledger.sqlschema import SELECT_ENTRY, connect

_SEQ, _DATASET, _ANALYST, _COST = (
    ENTRY_COLUMNS.index(name) for name in ("seq", "dataset", "analyst", "cost_units")
)


@dataclass(frozen=True)
class RangeCheck:
    """What checking entries start..stop-1 (and the checkpoints they end) found."""

    start: int
    stop: int
    leaves: dict[int, bytes]
    """Leaf hash recomputed from each stored row's values, by sequence number."""
    spent: dict[tuple[str, str], int]
    """Units the range's charges add to each running total."""
    bad_signature_sizes: list[int]
    checkpoints_digest: bytes
    """`checkpoints_digest` of the checkpoint rows whose signatures were verified."""
    signatures_checked: int = field(default=0)


def checkpoint_sizes(start: int, stop: int) -> tuple[int, int]:
    """The checkpoint sizes that entries start..stop-1 end (and size 0 in the first)."""
    return (start if start == 0 else start + 1, stop)


def checkpoints_digest(rows: list[tuple[int, bytes, bytes]]) -> bytes:
    """A digest of (size, root, signature) rows, in size order."""
    digest = hashlib.sha256()
    for size, root, signature in rows:
        digest.update(b"%d %d %d " % (size, len(root), len(signature)) + root + signature)
    return digest.digest()


def read_checkpoints(
    connection: sqlite3.Connection, start: int, stop: int
) -> list[tuple[int, bytes, bytes]]:
    """The stored checkpoints that entries start..stop-1 end, in size order."""
    return [
        (int(size), bytes(root), bytes(signature))
        for size, root, signature in connection.execute(
            "SELECT size, root, signature FROM checkpoints WHERE size BETWEEN ? AND ? "
            "ORDER BY size",
            checkpoint_sizes(start, stop),
        )
    ]


def check_range(
    connection: sqlite3.Connection, origin: str, raw_key: bytes | None, start: int, stop: int
) -> RangeCheck:
    """Re-hash entries start..stop-1 and verify the signatures of the checkpoints they
    end with the pinned key `raw_key` (None: leave signatures unchecked), reading from
    `connection` (inside the caller's transaction)."""
    leaves: dict[int, bytes] = {}
    spent_by_names: dict[tuple[str, str], int] = {}
    rows: list[Any] = connection.execute(
        SELECT_ENTRY + " WHERE seq >= ? AND seq < ? ORDER BY seq", (start, stop)
    ).fetchall()
    leaf_hash = tlog.leaf_hash
    for row in rows:
        leaves[row[_SEQ]] = leaf_hash(row_leaf_data(row))
        names = (row[_DATASET], row[_ANALYST])
        spent_by_names[names] = spent_by_names.get(names, 0) + row[_COST]
    spent: dict[tuple[str, str], int] = {}
    for (dataset, analyst), units in spent_by_names.items():
        for key in spent_total_keys_for(dataset, analyst):
            spent[key] = spent.get(key, 0) + units
    checkpoints = read_checkpoints(connection, start, stop) if raw_key is not None else []
    return RangeCheck(
        start=start,
        stop=stop,
        leaves=leaves,
        spent=spent,
        bad_signature_sizes=[] if raw_key is None else bad_signatures(raw_key, origin, checkpoints),
        checkpoints_digest=checkpoints_digest(checkpoints),
        signatures_checked=len(checkpoints),
    )


def check_range_in_file(
    path: str, origin: str, raw_key: bytes | None, start: int, stop: int
) -> RangeCheck:
    """`check_range` on a connection of its own, in one read transaction: what a pool
    worker runs (top level, arguments and result picklable)."""
    connection = connect(Path(path))
    try:
        connection.execute("BEGIN")
        try:
            return check_range(connection, origin, raw_key, start, stop)
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()
