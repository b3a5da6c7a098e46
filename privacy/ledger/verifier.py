"""The ledger's self-check: recompute everything from the rows and compare it with what is
stored and signed.

Run at node start-up (a node must not serve from a ledger that fails it), by
`npcs-node ledger verify`, and with an auditor's remembered checkpoints to detect a
rewritten, truncated or forked ledger. It reads one consistent snapshot, entry by entry.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy import tlog
from privacy.ledger.entry import LedgerEntry
from privacy.ledger.sqlschema import SELECT_ENTRY, entry_from_row, is_busy
from privacy.signed_note import ed25519_key_hash
from privacy.tlog import Checkpoint, SignedCheckpoint, raw_public_key

MAX_REPORTED_PROBLEMS = 20


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


def verify_ledger(
    connection: sqlite3.Connection,
    public_key: Ed25519PublicKey,
    remembered: Sequence[SignedCheckpoint],
    all_signatures: bool,
) -> SelfCheckReport:
    """Check the ledger on `connection` (see `LedgerReader.verify`). A busy database
    raises sqlite3.OperationalError for the caller to retry; any other unreadable
    database is reported as a problem."""
    state = _AuditState()
    # One read transaction: a consistent snapshot even while other processes write.
    connection.execute("BEGIN")
    try:
        return _audit(connection, state, public_key, remembered, all_signatures)
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise
        state.add(f"the ledger database cannot be read: {exc}")
    except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
        state.add(f"the ledger database cannot be read: {exc}")
    finally:
        connection.execute("ROLLBACK")
    return SelfCheckReport(ok=False, problems=state.problems, first_bad_entry=state.first_bad_entry)


def _audit(
    connection: sqlite3.Connection,
    state: _AuditState,
    public_key: Ed25519PublicKey,
    remembered: Sequence[SignedCheckpoint],
    all_signatures: bool,
) -> SelfCheckReport:
    integrity = connection.execute("PRAGMA integrity_check").fetchall()
    if [tuple(row) for row in integrity] != [("ok",)]:
        state.add(f"SQLite integrity check failed: {integrity[0][0]}")
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    audit = _Audit(
        state=state,
        public_key=public_key,
        origin=meta.get("origin", ""),
        all_signatures=all_signatures,
        remembered={cp.checkpoint.size: cp for cp in remembered},
        stored_nodes={
            (int(level), int(idx)): bytes(digest)
            for level, idx, digest in connection.execute("SELECT level, idx, hash FROM tree_nodes")
        },
        checkpoints={
            int(size): (bytes(root), bytes(signature))
            for size, root, signature in connection.execute(
                "SELECT size, root, signature FROM checkpoints"
            )
        },
    )
    audit.check_meta(meta)
    for row in connection.execute(SELECT_ENTRY + " ORDER BY seq"):
        if not audit.add_entry(entry_from_row(row), bytes(row[-1])):
            break
    audit.finish()
    audit.check_totals(
        {
            (str(scope), str(name)): int(units)
            for scope, name, units in connection.execute(
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
            pinned_hash = _pinned_key_hash(signed.checkpoint.origin, self.public_key)
            if signed.key_hash is not None and signed.key_hash != pinned_hash:
                self.state.add(
                    f"remembered checkpoint of size {size} has a bad signature: its key hash "
                    f"{signed.key_hash.hex()} does not name the pinned ledger key"
                )
            elif not signed.verify(self.public_key):
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


def _pinned_key_hash(origin: str, public_key: Ed25519PublicKey) -> bytes | None:
    """The signed-note key hash the pinned key has under `origin` (None: not a key name)."""
    try:
        return ed25519_key_hash(origin, raw_public_key(public_key))
    except ValueError:
        return None
