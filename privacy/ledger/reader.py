"""Read access to a ledger file: entries, spent totals, signed checkpoints, Merkle proofs,
and verification (delegated to `privacy.ledger.verifier`).

Proofs read the complete subtrees stored in `tree_nodes`, so an inclusion or consistency
proof costs O(log n) lookups. Every read retries SQLITE_BUSY (see `sqlschema`).
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy import tlog
from privacy.ledger.entry import LedgerEntry
from privacy.ledger.errors import LedgerFault
from privacy.ledger.full_check import verify_ledger
from privacy.ledger.sqlschema import SELECT_ENTRY, connect, entry_from_row, retry_busy
from privacy.ledger.verifier import Progress, SelfCheckReport
from privacy.signed_note import ed25519_key_hash
from privacy.tlog import Checkpoint, SignedCheckpoint

T = TypeVar("T")


class LedgerReader:
    """Read access to a ledger file: entries, totals, proofs and verification."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._conn = connection
        self._path = path
        self._lock = threading.RLock()

    @classmethod
    def open_existing(cls, path: Path) -> LedgerReader:
        if not path.exists():
            raise LedgerFault(f"there is no ledger at {path}")
        return cls(connect(path), path)

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- busy handling

    def _retry_busy(self, operation: Callable[[], T]) -> T:
        return retry_busy(operation, self._path)

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._retry_busy(lambda: self._conn.execute(sql, parameters).fetchall())

    # -- meta

    def meta(self) -> dict[str, str]:
        return dict(self._read("SELECT key, value FROM meta"))

    @property
    def origin(self) -> str:
        return self.meta().get("origin", "")

    # -- entries and totals

    def size(self) -> int:
        return self._size()

    def _size(self) -> int:
        (value,) = self._read("SELECT COALESCE(MAX(seq) + 1, 0) FROM entries")[0]
        return int(value)

    def entries(self, start: int = 0, end: int | None = None) -> list[LedgerEntry]:
        stop = self._size() if end is None else end
        rows = self._read(SELECT_ENTRY + " WHERE seq >= ? AND seq < ? ORDER BY seq", (start, stop))
        return [entry_from_row(row) for row in rows]

    def iter_entries(self, batch: int = 2000) -> Iterator[LedgerEntry]:
        last = -1
        while True:
            rows = self._read(SELECT_ENTRY + " WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch))
            if not rows:
                return
            for row in rows:
                yield entry_from_row(row)
            last = rows[-1][0]

    def tail(self, count: int) -> tuple[list[LedgerEntry], dict[str, int]]:
        """The last `count` entries (oldest first) and the spent totals by dataset, from
        one snapshot: O(count) rows whatever the ledger's size."""

        def read() -> tuple[list[Any], list[Any]]:
            self._conn.execute("BEGIN")
            try:
                rows = self._conn.execute(
                    SELECT_ENTRY + " ORDER BY seq DESC LIMIT ?", (count,)
                ).fetchall()
                totals = self._conn.execute(
                    "SELECT name, units FROM spent_totals WHERE scope = 'dataset'"
                ).fetchall()
            finally:
                self._conn.execute("ROLLBACK")
            return rows, totals

        with self._lock:
            rows, totals = self._retry_busy(read)
        return [entry_from_row(row) for row in reversed(rows)], {
            str(name): int(units) for name, units in totals
        }

    def entry_by_query_id(self, query_id: str) -> LedgerEntry | None:
        rows = self._read(SELECT_ENTRY + " WHERE query_id = ?", (query_id,))
        return entry_from_row(rows[0]) if rows else None

    def spent_units(self, dataset: str | None = None, analyst: str | None = None) -> int:
        """Units charged, from the running totals (the self-check proves them = the rows)."""
        if dataset is not None and analyst is not None:
            rows = self._read(
                "SELECT COALESCE(SUM(cost_units), 0) FROM entries "
                "WHERE dataset = ? AND analyst = ?",
                (dataset, analyst),
            )
            return int(rows[0][0])
        if dataset is not None:
            return self._total("dataset", dataset)
        if analyst is not None:
            return self._total("analyst", analyst)
        rows = self._read(
            "SELECT COALESCE(SUM(units), 0) FROM spent_totals WHERE scope = ?", ("dataset",)
        )
        return int(rows[0][0])

    def spent_by_dataset(self) -> dict[str, int]:
        rows = self._read("SELECT name, units FROM spent_totals WHERE scope = 'dataset'")
        return {name: int(units) for name, units in rows}

    def _total(self, scope: str, name: str) -> int:
        rows = self._read(
            "SELECT units FROM spent_totals WHERE scope = ? AND name = ?", (scope, name)
        )
        return int(rows[0][0]) if rows else 0

    # -- tree, checkpoints, proofs

    def _complete_subtree(self, start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        rows = self._conn.execute(
            "SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, start >> level)
        ).fetchall()
        if not rows:
            raise LedgerFault(
                f"the ledger's Merkle tree lacks the node for entries {start}..{end - 1}"
            )
        return bytes(rows[0][0])

    def _root(self, size: int) -> bytes:
        return tlog.subtree_root(0, size, self._complete_subtree)

    def root(self, size: int | None = None) -> bytes:
        with self._lock:
            target = self._size() if size is None else size
            return bytes(self._retry_busy(lambda: self._root(target)))

    def latest_checkpoint(self) -> SignedCheckpoint:
        rows = self._read(
            "SELECT size, root, signature FROM checkpoints ORDER BY size DESC LIMIT 1"
        )
        if not rows:
            raise LedgerFault(f"the ledger at {self._path} has no signed checkpoint")
        return self._signed(rows[0])

    def checkpoints(self) -> list[tuple[str, SignedCheckpoint]]:
        """Every signed checkpoint with its signing time, oldest first."""
        rows = self._read("SELECT time, size, root, signature FROM checkpoints ORDER BY size")
        return [(row[0], self._signed(row[1:])) for row in rows]

    def checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        rows = self._read("SELECT size, root, signature FROM checkpoints WHERE size = ?", (size,))
        return self._signed(rows[0]) if rows else None

    def _signed(self, row: Sequence[Any]) -> SignedCheckpoint:
        size, root, signature = row
        meta = self.meta()
        try:
            checkpoint = Checkpoint(meta.get("origin", ""), int(size), bytes(root))
        except ValueError as exc:
            raise LedgerFault(f"the stored checkpoint of size {size} is malformed: {exc}") from exc
        return SignedCheckpoint(checkpoint, bytes(signature), _note_key_hash(meta))

    def inclusion_proof(self, index: int, tree_size: int) -> tuple[bytes, ...]:
        with self._lock:
            proof = self._retry_busy(
                lambda: tlog.inclusion_proof(index, tree_size, self._complete_subtree)
            )
            return tuple(proof)

    def consistency_proof(self, old_size: int, new_size: int) -> tuple[bytes, ...]:
        with self._lock:
            proof = self._retry_busy(
                lambda: tlog.consistency_proof(old_size, new_size, self._complete_subtree)
            )
            return tuple(proof)

    # -- verification

    def verify(
        self,
        public_key: Ed25519PublicKey,
        *,
        remembered: Sequence[SignedCheckpoint] = (),
        all_signatures: bool = True,
        pool: Executor | None = None,
        progress: Progress | None = None,
    ) -> SelfCheckReport:
        """Recompute everything from the rows and compare it with what is stored and signed.

        Checks: SQLite integrity; contiguous sequence numbers; each row's leaf hash; every
        stored tree node; the root at every checkpointed size (and its signature, all of
        them when `all_signatures`); running totals = sums of charges; and every
        `remembered` checkpoint (which an auditor kept) against the recomputed roots.
        `pool` checks chunks of entries (rows and signatures) on other cores;
        `progress(done, size)` hears of each chunk.
        """
        with self._lock:
            return self._retry_busy(
                lambda: verify_ledger(
                    self._conn,
                    self._path,
                    public_key,
                    remembered,
                    all_signatures,
                    pool=pool,
                    progress=progress,
                )
            )


def _note_key_hash(meta: dict[str, str]) -> bytes | None:
    """The signed-note key hash of the key the ledger names (None when unreadable).

    Only for writing notes: verification always uses the key the caller pins.
    """
    try:
        raw = base64.b64decode(meta["public_key"], validate=True)
        return ed25519_key_hash(meta["origin"], raw)
    except (KeyError, ValueError):
        return None
