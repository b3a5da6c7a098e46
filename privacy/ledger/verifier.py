"""The ledger's self-check, chunk by chunk: fold in each chunk's range check (rows
re-hashed, checkpoint signatures verified; `privacy.ledger.range_check`), in order,
recomputing every stored tree node and checkpoint root from the leaf hashes and the
running totals from the charges, and compare with what is stored and signed.

`privacy.ledger.full_check` runs the `Audit` over a whole ledger (`npcs-node ledger
verify`); the node's background self-check (`privacy.ledger.resumable`) runs it one
chunk at a time from its verified-through mark.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy import tlog
from privacy.ledger.range_check import RangeCheck, checkpoints_digest, read_checkpoints
from privacy.signed_note import ed25519_key_hash
from privacy.tlog import Checkpoint, SignedCheckpoint, raw_public_key

MAX_REPORTED_PROBLEMS = 20
CHUNK_ENTRIES = 4096
"""Entries read, hashed and checked at a time (and between two marks of the pass)."""

Progress = Callable[[int, int], None]
"""Called with (entries checked, entries in the ledger) after each chunk."""


@dataclass(frozen=True)
class SelfCheckReport:
    ok: bool
    problems: list[str]
    size: int = 0
    root: bytes = tlog.EMPTY_ROOT
    first_bad_entry: int | None = None


@dataclass
class AuditState:
    """The problems a ledger check has found so far (at most MAX_REPORTED_PROBLEMS) and
    the first entry found bad; shared by `ledger verify` and the node's own checks."""

    problems: list[str] = field(default_factory=list)
    first_bad_entry: int | None = None

    def entry_problem(self, seq: int, message: str) -> None:
        if self.first_bad_entry is None or seq < self.first_bad_entry:
            self.first_bad_entry = seq
        self.add(message)

    def add(self, message: str) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(message)


def ledger_size(connection: sqlite3.Connection) -> int:
    (value,) = connection.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM entries").fetchone()
    return int(value)


def last_checkpoint(connection: sqlite3.Connection) -> tuple[int, bytes, bytes] | None:
    row = connection.execute(
        "SELECT size, root, signature FROM checkpoints ORDER BY size DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))


def stored_totals(connection: sqlite3.Connection) -> dict[tuple[str, str], int]:
    return {
        (str(scope), str(name)): int(units)
        for scope, name, units in connection.execute("SELECT scope, name, units FROM spent_totals")
    }


@dataclass(frozen=True)
class Chunk:
    """Entries start..stop-1 as stored: (seq, query_id, leaf hash) of each, the tree
    nodes they complete, and the checkpoints at sizes start+1..stop (and size 0 with
    the first chunk) as (size, root, signature) in size order."""

    start: int
    stop: int
    rows: list[tuple[int, str, bytes]]
    nodes: dict[tuple[int, int], bytes]
    checkpoints: list[tuple[int, bytes, bytes]]


def read_chunk(connection: sqlite3.Connection, start: int, stop: int) -> Chunk:
    """Read one chunk with indexed range queries (O(chunk + log n) rows)."""
    rows = [
        (seq, query_id, bytes(leaf))
        for seq, query_id, leaf in connection.execute(
            "SELECT seq, query_id, leaf_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq",
            (start, stop),
        )
    ]
    nodes: dict[tuple[int, int], bytes] = {}
    for level in range(stop.bit_length()):
        # Node (level, idx) is completed by entry ((idx + 1) << level) - 1.
        first, last = ((start + (1 << level)) >> level) - 1, (stop >> level) - 1
        if last >= first:
            for idx, digest in connection.execute(
                "SELECT idx, hash FROM tree_nodes WHERE level = ? AND idx BETWEEN ? AND ?",
                (level, first, last),
            ):
                nodes[(level, int(idx))] = bytes(digest)
    return Chunk(start, stop, rows, nodes, read_checkpoints(connection, start, stop))


@dataclass
class Audit:
    """Recomputes the tree and totals chunk by chunk from range checks, comparing with
    what is stored; starts empty, or from a verified frontier and totals (the
    resumable pass)."""

    state: AuditState
    public_key: Ed25519PublicKey
    origin: str
    verify_signatures: bool
    remembered: dict[int, SignedCheckpoint] = field(default_factory=dict)
    frontier: tlog.MerkleFrontier = field(default_factory=tlog.MerkleFrontier)
    spent: dict[tuple[str, str], int] = field(default_factory=dict)
    produced_nodes: int = 0
    signatures_checked: int = 0
    stored_nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    checkpoints: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    bad_signatures: set[int] = field(default_factory=set)
    """Sizes in the current chunk whose signature did not verify."""
    bad_signed_roots: list[int] = field(default_factory=list)
    """Sizes whose recomputed root matched a checkpoint with a bad signature."""

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

    def add_chunk(self, chunk: Chunk, checked: RangeCheck) -> bool:
        """Fold in a chunk's entries, with its range check; False when the sequence
        breaks (stop reading)."""
        self.stored_nodes = chunk.nodes
        self.checkpoints = {size: (root, sig) for size, root, sig in chunk.checkpoints}
        self.bad_signatures = set(checked.bad_signature_sizes)
        if self.verify_signatures:
            self.signatures_checked += checked.signatures_checked
            if checked.checkpoints_digest != checkpoints_digest(chunk.checkpoints):
                self.state.add(
                    f"the checkpoints of entries {chunk.start}..{chunk.stop - 1} changed while "
                    "their signatures were being verified"
                )
        produced_before = self.produced_nodes
        if chunk.start == 0 and 0 in self.checkpoints:
            self._compare_root()
        leaves = checked.leaves
        for seq, query_id, stored_leaf in chunk.rows:
            if not self.add_entry(seq, query_id, leaves.get(seq, b""), stored_leaf):
                return False
        if self.frontier.size < chunk.stop:
            self.state.entry_problem(self.frontier.size, f"entry {self.frontier.size} is missing")
            return False
        for key, units in checked.spent.items():
            self.spent[key] = self.spent.get(key, 0) + units
        if len(chunk.nodes) != self.produced_nodes - produced_before:
            self.state.add(
                f"the Merkle tree has {len(chunk.nodes)} stored nodes for entries "
                f"{chunk.start}..{chunk.stop - 1}, expected {self.produced_nodes - produced_before}"
            )
        return True

    def add_entry(self, seq: int, query_id: str, leaf: bytes, stored_leaf: bytes) -> bool:
        """Fold in the next entry, whose row hashed to `leaf` (b"": its row was not
        seen by the range check); False when the sequence breaks (stop reading)."""
        expected = self.frontier.size
        if seq != expected:
            self.state.entry_problem(
                expected, f"entry {expected} is missing (next stored entry is {seq})"
            )
            return False
        if leaf != stored_leaf:
            self.state.entry_problem(seq, f"entry {seq} ({query_id}) does not match its leaf hash")
            leaf = leaf or stored_leaf
        for level, idx, digest in self.frontier.append(leaf):
            self.produced_nodes += 1
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
            elif size in self.bad_signatures:
                self.bad_signed_roots.append(size)
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

    def report_bad_signatures(self) -> None:
        for size in self.bad_signed_roots:
            self.state.add(f"the checkpoint at size {size} has a bad signature")

    def finish(self, last: tuple[int, bytes, bytes] | None) -> None:
        """At the end of the ledger: the last checkpoint covers it, and no remembered
        checkpoint is longer."""
        size, root = self.frontier.size, self.frontier.root()
        self._check_last_checkpoint(size, root, last)
        for remembered_size in sorted(self.remembered):
            if remembered_size > size:
                self.state.entry_problem(
                    size,
                    f"the ledger has {size} entries but a remembered checkpoint has "
                    f"{remembered_size}: entries were removed (truncated or forked ledger)",
                )

    def _check_last_checkpoint(
        self, size: int, root: bytes, last_checkpoint: tuple[int, bytes, bytes] | None
    ) -> None:
        if last_checkpoint is None:
            self.state.add("the ledger has no signed checkpoint")
            return
        last, last_root, last_signature = last_checkpoint
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
        elif last_root != root:
            self.state.add(
                f"the recomputed root differs from the last signed checkpoint (size {size})"
            )
        elif not self._signed_by_key(size, root, last_signature):
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
