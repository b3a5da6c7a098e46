"""The verified-through mark: how far the background self-check has re-verified a ledger.

One row of the ledger's `verified_mark` table, signed with the ledger key: the size k up
to which every entry was re-hashed, every stored tree node and checkpoint root recomputed
and every checkpoint signature verified; the root at k; and the spent totals those k
entries sum to. The next pass resumes at k, so each entry is hashed once over the life of
the node. The start-up check reads it in O(log n): the stored tree must still give root
at k, and no running total may be below what the first k entries sum to (totals only
grow). Without the ledger key the mark cannot be moved or its totals changed.

A ledger made before the mark existed has no row: its first pass starts at 0.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privacy import tlog

HEADER = "npcs ledger verified-through v1"
"""First line of the signed text; keeps its signatures apart from checkpoints'."""

TotalKey = tuple[str, str]


class MarkUnreadableError(ValueError):
    """The stored mark is malformed or its signature does not verify."""


@dataclass(frozen=True)
class VerifiedMark:
    """The first `size` entries verified; `root` is the root at `size`, `totals` what
    they sum to per running-total key."""

    origin: str
    size: int = 0
    root: bytes = tlog.EMPTY_ROOT
    totals: dict[TotalKey, int] = field(default_factory=dict)

    def totals_text(self) -> str:
        """The totals as sorted compact JSON [[scope, name, units], ...]."""
        totals = sorted([scope, name, units] for (scope, name), units in self.totals.items())
        return json.dumps(totals, separators=(",", ":"), ensure_ascii=True)

    def body(self) -> bytes:
        """The signed text: header, origin, size, base64 root, totals, one per line."""
        root = base64.b64encode(self.root).decode("ascii")
        return f"{HEADER}\n{self.origin}\n{self.size}\n{root}\n{self.totals_text()}\n".encode()

    def signed_by(self, key: Ed25519PrivateKey) -> bytes:
        return key.sign(self.body())


def load_mark(
    connection: sqlite3.Connection, origin: str, public_key: Ed25519PublicKey
) -> VerifiedMark:
    """The stored mark (the empty mark when there is none, or no table yet), checked
    against the ledger key. Raises MarkUnreadableError; a busy database raises for the caller
    to retry."""
    try:
        rows = connection.execute(
            "SELECT size, root, totals, signature FROM verified_mark WHERE id = 1"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return VerifiedMark(origin)
        raise
    if not rows:
        return VerifiedMark(origin)
    size, root, totals_text, signature = rows[0]
    try:
        totals = {
            (str(scope), str(name)): int(units) for scope, name, units in json.loads(totals_text)
        }
        mark = VerifiedMark(origin, int(size), bytes(root), totals)
        public_key.verify(bytes(signature), mark.body())
    except (ValueError, TypeError, binascii.Error) as exc:
        raise MarkUnreadableError(f"the verified-through mark is malformed: {exc}") from exc
    except InvalidSignature as exc:
        raise MarkUnreadableError(
            "the verified-through mark's signature does not verify with the ledger key"
        ) from exc
    return mark


def store_mark(connection: sqlite3.Connection, mark: VerifiedMark, signature: bytes) -> None:
    """Record `mark` unless a larger one is stored (inside the caller's write transaction)."""
    connection.execute(
        "INSERT INTO verified_mark (id, size, root, totals, signature) VALUES (1, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root, "
        "totals = excluded.totals, signature = excluded.signature "
        "WHERE excluded.size > verified_mark.size",
        (mark.size, mark.root, mark.totals_text(), signature),
    )
