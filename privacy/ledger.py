"""The node's privacy-budget ledger: charge before release, tamper-evident, crash-safe.

One SQLite file on local disk (WAL, synchronous=FULL). Every answer the node releases
is one row, inserted in the same `BEGIN IMMEDIATE` transaction that checked the budget
and ran the release, and only returned after that transaction committed. The rows are
the leaves of an RFC 6962 Merkle tree whose complete subtrees are stored in SQLite (an
append touches O(log n) rows, proofs read stored hashes), and every append signs a new
checkpoint with the node's Ed25519 ledger key.

Several processes may write one ledger file: all authoritative state is in SQLite.
Importing this module is cheap; OpenDP is imported only to compute (epsilon, delta).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privacy import tlog
from privacy.budget import format_rho, units_to_rho
from privacy.policy import BudgetExceeded, BudgetPolicy
from privacy.tlog import Checkpoint, SignedCheckpoint

__all__ = [
    "BudgetExceeded",
    "BudgetPolicy",
    "ChargeOutcome",
    "ChargeRequest",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerFault",
    "LedgerReader",
    "QueryIdConflict",
    "Receipt",
    "ReleaseFailed",
    "SelfCheckReport",
]

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 0
"""SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries, which starves
concurrent writers; the ledger retries SQLITE_BUSY itself with sub-millisecond waits."""
BUSY_RETRY_FIRST_WAIT = 0.0001
BUSY_RETRY_MAX_WAIT = 0.002
BUSY_DEADLINE_SECONDS = 120.0
"""How long a writer keeps retrying SQLITE_BUSY before reporting a fault."""
MAX_REPORTED_PROBLEMS = 20

EntryStatus = Literal["released", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    query_id TEXT NOT NULL UNIQUE,
    analyst TEXT NOT NULL,
    dataset TEXT NOT NULL,
    statistic TEXT NOT NULL,
    signed_request BLOB,
    canonical_query BLOB NOT NULL,
    query_hash TEXT NOT NULL,
    purpose TEXT NOT NULL,
    mechanism_summary TEXT NOT NULL,
    cost_units INTEGER NOT NULL,
    epsilon TEXT NOT NULL,
    delta TEXT NOT NULL,
    opendp_version TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    status TEXT NOT NULL,
    answer BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tree_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    root BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS spent_totals (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    units INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;
"""

_ENTRY_COLUMNS = (
    "seq",
    "time",
    "query_id",
    "analyst",
    "dataset",
    "statistic",
    "signed_request",
    "canonical_query",
    "query_hash",
    "purpose",
    "mechanism_summary",
    "cost_units",
    "epsilon",
    "delta",
    "opendp_version",
    "snapshot_id",
    "status",
    "answer",
)
# Built from the constant column list above, never from input.
_SELECT_ENTRY = f"SELECT {', '.join(_ENTRY_COLUMNS)}, leaf_hash FROM entries"  # noqa: S608
_INSERT_ENTRY = (
    f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}, leaf_hash) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(_ENTRY_COLUMNS) + 1))})"
)


# --- errors --------------------------------------------------------------------------


class LedgerError(Exception):
    """Base class of everything the ledger raises on purpose."""


class QueryIdConflict(LedgerError):  # noqa: N818 - name fixed by the node service contract
    """A query_id already charged for a different query body (a user error)."""


class ReleaseFailed(LedgerError):  # noqa: N818 - name fixed by the node service contract
    """The release raised after the budget was charged: the charge stands (counts as spent)."""


class LedgerFault(LedgerError):  # noqa: N818 - name fixed by the node service contract
    """The ledger is unusable: integrity or self-check failure, or the database failed."""


# --- values --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeRequest:
    """Everything the ledger records about one query, apart from the answer."""

    query_id: str
    analyst: str
    dataset: str
    statistic: str
    canonical_query: bytes
    query_hash: str
    """Hex SHA-256 of canonical_query."""
    purpose: str
    cost_units: int
    """Micro-rho, already rounded up from OpenDP's privacy map."""
    mechanism_summary: str
    """JSON text: distribution and scale per released value."""
    opendp_version: str
    snapshot_id: str
    signed_request: bytes | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first malformed field."""
        for name in ("query_id", "analyst", "dataset", "statistic", "purpose"):
            if not getattr(self, name).strip():
                raise ValueError(f"charge field {name!r} must not be empty")
        if hashlib.sha256(self.canonical_query).hexdigest() != self.query_hash:
            raise ValueError("charge field 'query_hash' is not the SHA-256 of canonical_query")
        if not isinstance(self.cost_units, int) or self.cost_units < 0:
            raise ValueError("charge field 'cost_units' must be a non-negative integer")
        try:
            json.loads(self.mechanism_summary)
        except json.JSONDecodeError as exc:
            raise ValueError("charge field 'mechanism_summary' must be JSON text") from exc

    def same_body_as(self, entry: LedgerEntry) -> bool:
        """A retry of an entry: same analyst, dataset, statistic, query and purpose."""
        return (
            self.analyst == entry.analyst
            and self.dataset == entry.dataset
            and self.statistic == entry.statistic
            and self.canonical_query == entry.canonical_query
            and self.query_hash == entry.query_hash
            and self.purpose == entry.purpose
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One stored charge (a leaf of the Merkle tree)."""

    seq: int
    time: str
    query_id: str
    analyst: str
    dataset: str
    statistic: str
    signed_request: bytes | None
    canonical_query: bytes
    query_hash: str
    purpose: str
    mechanism_summary: str
    cost_units: int
    epsilon: str
    delta: str
    opendp_version: str
    snapshot_id: str
    status: str
    answer: bytes

    def canonical_bytes(self) -> bytes:
        """Sorted-key compact JSON of every field, bytes as base64: the leaf data."""
        # Not dataclasses.asdict: it deep-copies every field and dominated the audit time.
        return canonical_json({name: getattr(self, name) for name in _ENTRY_COLUMNS})

    def leaf_hash(self) -> bytes:
        return tlog.leaf_hash(self.canonical_bytes())

    def to_json_dict(self) -> dict[str, Any]:
        return json.loads(self.canonical_bytes())  # type: ignore[no-any-return]


def canonical_json(fields: dict[str, Any]) -> bytes:
    encoded = {
        key: base64.b64encode(value).decode() if isinstance(value, bytes) else value
        for key, value in fields.items()
    }
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_from_canonical_bytes(data: bytes) -> LedgerEntry:
    """Parse the leaf data (e.g. from a receipt) back into an entry."""
    raw = json.loads(data)
    for name in ("canonical_query", "answer"):
        raw[name] = base64.b64decode(raw[name])
    if raw["signed_request"] is not None:
        raw["signed_request"] = base64.b64decode(raw["signed_request"])
    entry = LedgerEntry(**raw)
    if entry.canonical_bytes() != data:
        raise ValueError("leaf data is not in canonical form")
    return entry


@dataclass(frozen=True)
class Receipt:
    """What goes back to the client with every answer."""

    entry_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint
    replayed: bool
    leaf_data: bytes = b""
    """The entry's canonical bytes, so the client can check what was recorded."""

    def verify(self, public_key: Ed25519PublicKey, answer: bytes) -> bool:
        """The checkpoint is signed by `public_key`, and the recorded entry holds `answer`
        and is included in that checkpoint's tree."""
        if not self.checkpoint.verify(public_key):
            return False
        if self.checkpoint.checkpoint.size != self.tree_size:
            return False
        try:
            entry = entry_from_canonical_bytes(self.leaf_data)
        except (ValueError, TypeError, KeyError):
            return False
        if entry.answer != answer or entry.seq != self.entry_index:
            return False
        return tlog.verify_inclusion(
            tlog.leaf_hash(self.leaf_data),
            self.entry_index,
            self.tree_size,
            self.inclusion_proof,
            self.checkpoint.checkpoint.root,
        )


@dataclass(frozen=True)
class ChargeOutcome:
    answer: bytes
    receipt: Receipt


@dataclass(frozen=True)
class SelfCheckReport:
    ok: bool
    problems: list[str]
    size: int = 0
    root: bytes = tlog.EMPTY_ROOT
    first_bad_entry: int | None = None


@dataclass
class _AuditState:
    problems: list[str] = field(default_factory=list)
    first_bad_entry: int | None = None

    def entry_problem(self, seq: int, message: str) -> None:
        if self.first_bad_entry is None or seq < self.first_bad_entry:
            self.first_bad_entry = seq
        self.add(message)

    def add(self, message: str) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(message)


# --- (epsilon, delta) ----------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def epsilon_for_rho_units(cost_units: int, delta: str) -> str:
    """The epsilon at `delta` of a rho-zCDP cost, from OpenDP's zCDP -> approx-DP map.

    Built as OpenDP's Gaussian mechanism with sensitivity 1 and the scale whose zCDP
    cost is rho, converted by `make_zCDP_to_approxDP` and fixed at delta.
    """
    if cost_units == 0:
        return "0"
    from privacy.opendp_setup import opendp

    dp = opendp()
    rho = float(units_to_rho(cost_units))
    scale = (1.0 / (2.0 * rho)) ** 0.5
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale
    )
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gaussian), float(delta))
    epsilon, _ = approx.map(1.0)
    return repr(float(epsilon))


# --- the ledger ----------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


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
        return cls(_connect(path), path)

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

    def _retry_busy(self, operation: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + BUSY_DEADLINE_SECONDS
        delay = BUSY_RETRY_FIRST_WAIT
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise LedgerFault(f"ledger database error at {self._path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 1.5, BUSY_RETRY_MAX_WAIT)

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            rows: list[Any] = self._retry_busy(
                lambda: self._conn.execute(sql, parameters).fetchall()
            )
            return rows

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
        rows = self._read(_SELECT_ENTRY + " WHERE seq >= ? AND seq < ? ORDER BY seq", (start, stop))
        return [_entry_from_row(row) for row in rows]

    def iter_entries(self, batch: int = 2000) -> Iterator[LedgerEntry]:
        last = -1
        while True:
            rows = self._read(_SELECT_ENTRY + " WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch))
            if not rows:
                return
            for row in rows:
                yield _entry_from_row(row)
            last = rows[-1][0]

    def entry_by_query_id(self, query_id: str) -> LedgerEntry | None:
        rows = self._read(_SELECT_ENTRY + " WHERE query_id = ?", (query_id,))
        return _entry_from_row(rows[0]) if rows else None

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
        try:
            checkpoint = Checkpoint(self.origin, int(size), bytes(root))
        except ValueError as exc:
            raise LedgerFault(f"the stored checkpoint of size {size} is malformed: {exc}") from exc
        return SignedCheckpoint(checkpoint, bytes(signature))

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
    ) -> SelfCheckReport:
        """Recompute everything from the rows and compare it with what is stored and signed.

        Checks: SQLite integrity; contiguous sequence numbers; each row's leaf hash; every
        stored tree node; the root at every checkpointed size (and its signature, all of
        them when `all_signatures`); running totals = sums of charges; and every
        `remembered` checkpoint (which an auditor kept) against the recomputed roots.
        """
        with self._lock:
            result: SelfCheckReport = self._retry_busy(
                lambda: self._verify_locked(public_key, remembered, all_signatures)
            )
            return result

    def _verify_locked(
        self,
        public_key: Ed25519PublicKey,
        remembered: Sequence[SignedCheckpoint],
        all_signatures: bool,
    ) -> SelfCheckReport:
        state = _AuditState()
        # One read transaction: a consistent snapshot even while other processes write.
        self._conn.execute("BEGIN")
        try:
            return self._audit(state, public_key, remembered, all_signatures)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise
            state.add(f"the ledger database cannot be read: {exc}")
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
            state.add(f"the ledger database cannot be read: {exc}")
        finally:
            self._conn.execute("ROLLBACK")
        return SelfCheckReport(
            ok=False, problems=state.problems, first_bad_entry=state.first_bad_entry
        )

    def _audit(
        self,
        state: _AuditState,
        public_key: Ed25519PublicKey,
        remembered: Sequence[SignedCheckpoint],
        all_signatures: bool,
    ) -> SelfCheckReport:
        integrity = self._conn.execute("PRAGMA integrity_check").fetchall()
        if [tuple(row) for row in integrity] != [("ok",)]:
            state.add(f"SQLite integrity check failed: {integrity[0][0]}")
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        audit = _Audit(
            state=state,
            public_key=public_key,
            origin=meta.get("origin", ""),
            all_signatures=all_signatures,
            remembered={cp.checkpoint.size: cp for cp in remembered},
            stored_nodes={
                (int(level), int(idx)): bytes(digest)
                for level, idx, digest in self._conn.execute(
                    "SELECT level, idx, hash FROM tree_nodes"
                )
            },
            checkpoints={
                int(size): (bytes(root), bytes(signature))
                for size, root, signature in self._conn.execute(
                    "SELECT size, root, signature FROM checkpoints"
                )
            },
        )
        audit.check_meta(meta)
        for row in self._conn.execute(_SELECT_ENTRY + " ORDER BY seq"):
            if not audit.add_entry(_entry_from_row(row), bytes(row[-1])):
                break
        audit.finish()
        audit.check_totals(
            {
                (str(scope), str(name)): int(units)
                for scope, name, units in self._conn.execute(
                    "SELECT scope, name, units FROM spent_totals"
                )
            }
        )
        return SelfCheckReport(
            ok=not state.problems,
            problems=state.problems,
            size=audit.frontier.size,
            root=audit.frontier.root(),
            first_bad_entry=state.first_bad_entry,
        )


@dataclass
class _Audit:
    """Recomputes the tree and totals entry by entry, comparing with what is stored."""

    state: _AuditState
    public_key: Ed25519PublicKey
    origin: str
    all_signatures: bool
    remembered: dict[int, SignedCheckpoint]
    stored_nodes: dict[tuple[int, int], bytes]
    checkpoints: dict[int, tuple[bytes, bytes]]
    frontier: tlog.MerkleFrontier = field(default_factory=tlog.MerkleFrontier)
    spent: dict[tuple[str, str], int] = field(default_factory=dict)
    expected_nodes: int = 0

    def check_meta(self, meta: dict[str, str]) -> None:
        public_raw = base64.b64encode(tlog.raw_public_key(self.public_key)).decode()
        fingerprint = tlog.key_fingerprint(self.public_key)
        if meta.get("key_fingerprint") != fingerprint or meta.get("public_key") != public_raw:
            self.state.add(
                f"the ledger names ledger key {meta.get('key_fingerprint')}, but it is being "
                f"verified with key {fingerprint}"
            )
        for size, signed in sorted(self.remembered.items()):
            if not signed.verify(self.public_key):
                self.state.add(f"remembered checkpoint of size {size} has a bad signature")
            if signed.checkpoint.origin != self.origin:
                self.state.add(
                    f"remembered checkpoint is for origin {signed.checkpoint.origin!r}, "
                    f"the ledger's is {self.origin!r}"
                )

    def add_entry(self, entry: LedgerEntry, stored_leaf: bytes) -> bool:
        """Fold in the next entry; False when the sequence breaks (stop reading)."""
        seq = self.frontier.size
        if entry.seq != seq:
            self.state.entry_problem(
                seq, f"entry {seq} is missing (next stored entry is {entry.seq})"
            )
            return False
        leaf = entry.leaf_hash()
        if leaf != stored_leaf:
            self.state.entry_problem(
                seq, f"entry {seq} ({entry.query_id}) does not match its leaf hash"
            )
        for level, idx, digest in self.frontier.append(leaf):
            self.expected_nodes += 1
            if self.stored_nodes.get((level, idx)) != digest:
                message = (
                    f"stored Merkle node ({level}, {idx}) does not match entries "
                    f"{idx << level}..{((idx + 1) << level) - 1}"
                )
                if level == 0:
                    self.state.entry_problem(seq, message)
                else:
                    self.state.add(message)
        self._compare_root()
        for key in (("dataset", entry.dataset), ("analyst", entry.analyst)):
            self.spent[key] = self.spent.get(key, 0) + entry.cost_units
        return True

    def _compare_root(self) -> None:
        size = self.frontier.size
        stored = self.checkpoints.get(size)
        memo = self.remembered.get(size)
        if stored is None and memo is None:
            return
        root = self.frontier.root()
        if stored is not None:
            if stored[0] != root:
                self.state.entry_problem(
                    size - 1,
                    f"entry {size - 1}: the root at size {size} differs from its checkpoint",
                )
            elif self.all_signatures and not self._signed_by_key(size, root, stored[1]):
                self.state.add(f"the checkpoint at size {size} has a bad signature")
        if memo is not None and memo.checkpoint.root != root:
            self.state.entry_problem(
                size - 1,
                f"the ledger's first {size} entries differ from the remembered checkpoint "
                f"of size {size}: the ledger was rewritten",
            )

    def _signed_by_key(self, size: int, root: bytes, signature: bytes) -> bool:
        try:
            signed = SignedCheckpoint(Checkpoint(self.origin, size, root), signature)
        except ValueError:  # a malformed stored origin
            return False
        return signed.verify(self.public_key)

    def finish(self) -> None:
        size, root = self.frontier.size, self.frontier.root()
        if len(self.stored_nodes) != self.expected_nodes:
            self.state.add(
                f"the Merkle tree has {len(self.stored_nodes)} stored nodes, "
                f"expected {self.expected_nodes}"
            )
        self._check_last_checkpoint(size, root)
        for remembered_size in sorted(self.remembered):
            if remembered_size > size:
                self.state.entry_problem(
                    size,
                    f"the ledger has {size} entries but a remembered checkpoint has "
                    f"{remembered_size}: entries were removed (truncated or forked ledger)",
                )

    def _check_last_checkpoint(self, size: int, root: bytes) -> None:
        if not self.checkpoints:
            self.state.add("the ledger has no signed checkpoint")
            return
        last = max(self.checkpoints)
        if last > size:
            self.state.entry_problem(
                size,
                f"entry {size} is missing: the last signed checkpoint has size {last} "
                f"but the ledger has {size} entries",
            )
        elif last < size:
            self.state.entry_problem(
                last, f"entries from {last} on are not covered by a checkpoint"
            )
        elif self.checkpoints[last][0] != root:
            self.state.add(
                f"the recomputed root differs from the last signed checkpoint (size {size})"
            )
        elif not self._signed_by_key(size, root, self.checkpoints[last][1]):
            self.state.add(f"the last checkpoint (size {size}) is not signed by the ledger key")

    def check_totals(self, stored: dict[tuple[str, str], int]) -> None:
        for key in sorted(set(stored) | set(self.spent)):
            if stored.get(key, 0) != self.spent.get(key, 0):
                self.state.add(
                    f"spent total for {key[0]} {key[1]!r} is {stored.get(key, 0)} units but "
                    f"the charges sum to {self.spent.get(key, 0)}"
                )


class Ledger(LedgerReader):
    """The writable ledger of one node: `charge_and_release` is the only way to spend."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        *,
        origin: str,
        signing_key: Ed25519PrivateKey,
        policy: BudgetPolicy,
        delta: str,
    ) -> None:
        super().__init__(connection, path)
        self._origin = origin
        self._key = signing_key
        self._public_key = signing_key.public_key()
        self.policy = policy
        self.delta = delta
        self._writer_lock_fd = os.open(
            path.with_name(path.name + ".writer-lock"), os.O_RDWR | os.O_CREAT, 0o600
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._writer_lock_fd >= 0:
                os.close(self._writer_lock_fd)
                self._writer_lock_fd = -1

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        origin: str,
        signing_key: Ed25519PrivateKey,
        policy: BudgetPolicy,
        delta: str = "1e-9",
    ) -> Ledger:
        """Open (creating if needed) the ledger at `path`; refuse one made with another
        origin or key. Run `self_check()` before serving from it."""
        Checkpoint(origin, 0, tlog.EMPTY_ROOT)  # validates the origin
        float(delta)
        path.parent.mkdir(parents=True, exist_ok=True)
        ledger = cls(
            _connect(path), path, origin=origin, signing_key=signing_key, policy=policy, delta=delta
        )
        try:
            ledger._initialise()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public_key

    @property
    def origin(self) -> str:
        return self._origin

    def _initialise(self) -> None:
        fingerprint = tlog.key_fingerprint(self._public_key)
        with self._lock, self._writer_turn():
            self._begin_immediate()
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
                if not meta:
                    self._create_meta(fingerprint)
                else:
                    self._check_meta(meta, fingerprint)
                self._commit()
            except BaseException:
                self._rollback()
                raise

    def _create_meta(self, fingerprint: str) -> None:
        public_raw = base64.b64encode(tlog.raw_public_key(self._public_key)).decode()
        for key, value in (
            ("schema_version", SCHEMA_VERSION),
            ("origin", self._origin),
            ("key_fingerprint", fingerprint),
            ("public_key", public_raw),
        ):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        self._store_checkpoint(Checkpoint(self._origin, 0, tlog.EMPTY_ROOT).sign(self._key))

    def _check_meta(self, meta: dict[str, str], fingerprint: str) -> None:
        if meta.get("origin") != self._origin:
            raise LedgerFault(
                f"the ledger at {self._path} belongs to origin {meta.get('origin')!r}, "
                f"not {self._origin!r}"
            )
        if meta.get("key_fingerprint") != fingerprint:
            raise LedgerFault(
                f"the ledger at {self._path} was signed with ledger key "
                f"{meta.get('key_fingerprint')}, but this node's key is {fingerprint}"
            )

    # -- transactions

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Queue writers of this file in the kernel (flock on a side file) before
        BEGIN IMMEDIATE: one waiter wakes per commit, instead of every writer polling
        SQLite's lock, which collapses throughput with many processes. The kernel drops
        the lock when a process dies, so kill -9 never leaves it held. SQLite's own
        locking stays the authority: this only orders the queue."""
        fcntl.flock(self._writer_lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock_fd, fcntl.LOCK_UN)

    def _begin_immediate(self) -> None:
        self._retry_busy(lambda: self._conn.execute("BEGIN IMMEDIATE"))

    def _commit(self) -> None:
        # A COMMIT that fails with SQLITE_BUSY leaves the transaction open: retrying is safe.
        self._retry_busy(lambda: self._conn.execute("COMMIT"))

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    # -- charging

    def charge_and_release(
        self, charge: ChargeRequest, release: Callable[[], bytes]
    ) -> ChargeOutcome:
        """Check the budget, run `release`, record the charge with its answer, commit: all in
        one `BEGIN IMMEDIATE` transaction; return only after the commit.

        A query_id seen before returns the stored answer (byte-identical, no new charge),
        or raises QueryIdConflict if the body differs. A refusal (BudgetExceeded) charges
        nothing. If `release` raises, the charge is recorded and committed anyway (the
        mechanism may have run) and ReleaseFailed is raised.
        """
        charge.validate()
        epsilon = epsilon_for_rho_units(charge.cost_units, self.delta)
        with self._lock, self._writer_turn():
            self._begin_immediate()
            try:
                existing = self._entry_in_transaction(charge.query_id)
                if existing is not None:
                    outcome = self._replay(charge, existing)
                    self._rollback()
                    return outcome
                self._check_policy(charge)
                answer, failure = _run_release(release)
                entry = self._new_entry(charge, answer, epsilon, failure)
                receipt = self._append(entry)
                self._commit()
            except LedgerError:
                self._rollback()
                raise
            except sqlite3.Error as exc:
                self._rollback()
                raise LedgerFault(f"ledger database error at {self._path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
        if failure is not None:
            raise ReleaseFailed(
                f"query {charge.query_id!r} was charged but its release failed "
                f"({type(failure).__name__}); retry with a new query_id"
            ) from failure
        return ChargeOutcome(answer=answer, receipt=receipt)

    def _entry_in_transaction(self, query_id: str) -> LedgerEntry | None:
        rows = self._conn.execute(_SELECT_ENTRY + " WHERE query_id = ?", (query_id,)).fetchall()
        return _entry_from_row(rows[0]) if rows else None

    def _replay(self, charge: ChargeRequest, existing: LedgerEntry) -> ChargeOutcome:
        if not charge.same_body_as(existing):
            raise QueryIdConflict(
                f"query_id {charge.query_id!r} was already used for a different query; "
                "send a new query_id for a new query"
            )
        if existing.status != "released":
            raise ReleaseFailed(
                f"query {charge.query_id!r} was charged but its release failed; "
                "retry with a new query_id"
            )
        size = self._size_in_transaction()
        receipt = Receipt(
            entry_index=existing.seq,
            tree_size=size,
            inclusion_proof=tuple(tlog.inclusion_proof(existing.seq, size, self._complete_subtree)),
            checkpoint=self._checkpoint_in_transaction(size),
            replayed=True,
            leaf_data=existing.canonical_bytes(),
        )
        return ChargeOutcome(answer=existing.answer, receipt=receipt)

    def _check_policy(self, charge: ChargeRequest) -> None:
        self.policy.check(
            dataset=charge.dataset,
            analyst=charge.analyst,
            cost_units=charge.cost_units,
            dataset_spent=self._total_in_transaction("dataset", charge.dataset),
            analyst_spent=self._total_in_transaction("analyst", charge.analyst),
        )

    def _total_in_transaction(self, scope: str, name: str) -> int:
        rows = self._conn.execute(
            "SELECT units FROM spent_totals WHERE scope = ? AND name = ?", (scope, name)
        ).fetchall()
        return int(rows[0][0]) if rows else 0

    def _size_in_transaction(self) -> int:
        (value,) = self._conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM entries").fetchone()
        return int(value)

    def _checkpoint_in_transaction(self, size: int) -> SignedCheckpoint:
        row = self._conn.execute(
            "SELECT size, root, signature FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        if row is None:
            raise LedgerFault(f"the ledger has no signed checkpoint for its size {size}")
        return SignedCheckpoint(Checkpoint(self._origin, size, bytes(row[1])), bytes(row[2]))

    def _new_entry(
        self,
        charge: ChargeRequest,
        answer: bytes,
        epsilon: str,
        failure: BaseException | None,
    ) -> LedgerEntry:
        return LedgerEntry(
            seq=self._size_in_transaction(),
            time=_now(),
            query_id=charge.query_id,
            analyst=charge.analyst,
            dataset=charge.dataset,
            statistic=charge.statistic,
            signed_request=charge.signed_request,
            canonical_query=charge.canonical_query,
            query_hash=charge.query_hash,
            purpose=charge.purpose,
            mechanism_summary=charge.mechanism_summary,
            cost_units=charge.cost_units,
            epsilon=epsilon,
            delta=self.delta,
            opendp_version=charge.opendp_version,
            snapshot_id=charge.snapshot_id,
            status="released" if failure is None else "failed",
            answer=answer,
        )

    def _append(self, entry: LedgerEntry) -> Receipt:
        """Insert the row, its Merkle nodes, the totals and a new signed checkpoint."""
        leaf_data = entry.canonical_bytes()
        leaf = tlog.leaf_hash(leaf_data)
        values = [getattr(entry, name) for name in _ENTRY_COLUMNS]
        self._conn.execute(_INSERT_ENTRY, (*values, leaf))
        self._store_leaf_nodes(entry.seq, leaf)
        for scope, name in (("dataset", entry.dataset), ("analyst", entry.analyst)):
            self._conn.execute(
                "INSERT INTO spent_totals (scope, name, units) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET units = units + excluded.units",
                (scope, name, entry.cost_units),
            )
        size = entry.seq + 1
        signed = Checkpoint(self._origin, size, self._root(size)).sign(self._key)
        self._store_checkpoint(signed)
        return Receipt(
            entry_index=entry.seq,
            tree_size=size,
            inclusion_proof=tuple(tlog.inclusion_proof(entry.seq, size, self._complete_subtree)),
            checkpoint=signed,
            replayed=False,
            leaf_data=leaf_data,
        )

    def _store_leaf_nodes(self, index: int, leaf: bytes) -> None:
        level, idx, current = 0, index, leaf
        nodes = [(0, index, leaf)]
        while idx & 1:
            current = tlog.node_hash(
                self._complete_subtree((idx - 1) << level, idx << level), current
            )
            level += 1
            idx >>= 1
            nodes.append((level, idx, current))
        self._conn.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)

    def _store_checkpoint(self, signed: SignedCheckpoint) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints (size, time, root, signature) VALUES (?, ?, ?, ?)",
            (signed.checkpoint.size, _now(), signed.checkpoint.root, signed.signature),
        )

    # -- budget views

    def remaining_units(self, dataset: str, analyst: str | None = None) -> int:
        analyst_spent = self._total("analyst", analyst) if analyst is not None else 0
        return self.policy.remaining(
            dataset, self._total("dataset", dataset), analyst, analyst_spent
        )

    def self_check(self) -> SelfCheckReport:
        """Start-up check: integrity, recomputed root = last signed checkpoint (signed by
        this node's key), totals = sums of charges. A node must not serve if it fails."""
        return self.verify(self._public_key, all_signatures=False)

    def require_sound(self) -> None:
        report = self.self_check()
        if not report.ok:
            raise LedgerFault(
                f"the ledger at {self._path} failed its self-check: {report.problems[0]}"
            )


def _run_release(release: Callable[[], bytes]) -> tuple[bytes, Exception | None]:
    """Run the release; an exception still counts as spent (noise may have been drawn)."""
    try:
        answer = release()
    except Exception as exc:
        return b"", exc
    if not isinstance(answer, bytes):
        return b"", TypeError(f"release returned {type(answer).__name__}, not bytes")
    return answer, None


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _set_wal(connection)
        connection.execute("PRAGMA synchronous = FULL")
    except BaseException:
        connection.close()
        raise
    return connection


def _set_wal(connection: sqlite3.Connection) -> None:
    deadline = time.monotonic() + BUSY_DEADLINE_SECONDS
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise LedgerFault(f"cannot switch the ledger to WAL mode: {exc}") from exc
            time.sleep(0.005)
            continue
        if str(mode).lower() != "wal":
            raise LedgerFault(f"the ledger database refused WAL mode (got {mode!r})")
        return


assert tuple(item.name for item in fields(LedgerEntry)) == _ENTRY_COLUMNS


def _entry_from_row(row: Sequence[Any]) -> LedgerEntry:
    values = dict(zip(_ENTRY_COLUMNS, row, strict=False))
    for name in ("canonical_query", "answer"):
        values[name] = bytes(values[name])
    if values["signed_request"] is not None:
        values["signed_request"] = bytes(values["signed_request"])
    return LedgerEntry(**values)


def describe_cost(entry: LedgerEntry) -> str:
    """'rho 0.01 (eps 1.23 at delta 1e-09)' for tables and logs."""
    epsilon = float(entry.epsilon)
    return f"rho {format_rho(entry.cost_units)} (eps {epsilon:.4g} at delta {entry.delta})"
