"""Remembered ledger checkpoints: the one memory analysts and auditors keep of each node.

A node signs a checkpoint (origin, size, root) of its ledger with every answer and on
request. Whoever keeps the newest one they verified can later tell that the node's
ledger went backwards. `ledger_regression` is the one rule for that, used by
`npcs query` and `npcs nodes` (which see only checkpoints) and by `npcs audit` (which
also recomputes the root of every prefix from the entries themselves):

- a ledger smaller than remembered **shrank** (entries were removed: truncated, or an
  old copy restored);
- a ledger whose first `size` entries no longer hash to the remembered root **forked**
  (history rewritten, or two ledgers under one key).

Every client sends the size it remembers and the node answers with an RFC 6962
consistency proof from it; `check_continuity` is the one rule for that proof: a
checkpoint that shrank, forked (even one that has grown past the remembered size) or
comes without a proof makes the client refuse the node's answer.

The store is one SQLite table, per partnership and node: an analyst's lives in the
results store's file, an auditor's in its own file (`coordinator.audit.memory`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from coordinator.errors import CheckpointStoreError
from coordinator.local_store import create_schema, transaction
from kernel.messages import ConsistencyFromRemembered, PublishedCheckpoint
from privacy import tlog

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    partnership TEXT NOT NULL,
    node TEXT NOT NULL,
    origin TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    signature BLOB NOT NULL,
    key_fingerprint TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (partnership, node)
);
"""

_SELECT_ONE = (
    "SELECT node, origin, size, root, signature, key_fingerprint, seen_at "
    "FROM checkpoints WHERE partnership = ? AND node = ?"
)
_SELECT_ALL = (
    "SELECT node, origin, size, root, signature, key_fingerprint, seen_at "
    "FROM checkpoints WHERE partnership = ? ORDER BY node"
)

Regression = Literal["shrank", "forked"]


@dataclass(frozen=True)
class RememberedCheckpoint:
    """A node's signed checkpoint as seen (and verified) at `seen_at`."""

    node: str
    origin: str
    size: int
    root: bytes
    signature: bytes
    key_fingerprint: str
    """The pinned ledger key the signature was verified with."""
    seen_at: str

    @classmethod
    def seen(
        cls, node: str, checkpoint: PublishedCheckpoint, *, key_fingerprint: str, seen_at: str
    ) -> RememberedCheckpoint:
        return cls(
            node=node,
            origin=checkpoint.signed.checkpoint.origin,
            size=checkpoint.size,
            root=checkpoint.root,
            signature=checkpoint.signed.signature,
            key_fingerprint=key_fingerprint,
            seen_at=seen_at,
        )

    @property
    def signed(self) -> tlog.SignedCheckpoint:
        return tlog.SignedCheckpoint(
            tlog.Checkpoint(self.origin, self.size, self.root), self.signature
        )


def ledger_regression(
    remembered: RememberedCheckpoint, *, size: int, root_at_remembered_size: bytes | None
) -> Regression | None:
    """Did the node's ledger, now of `size` entries, go back on the remembered checkpoint?

    `root_at_remembered_size` is today's root over the ledger's first `remembered.size`
    entries where it is known (None where it is not: a checkpoint of another size).
    """
    if size < remembered.size:
        return "shrank"
    if root_at_remembered_size is not None and root_at_remembered_size != remembered.root:
        return "forked"
    return None


Discontinuity = Literal["unsigned", "shrank", "forked", "unproven"]


@dataclass(frozen=True)
class LedgerDiscontinuity:
    """A node's checkpoint that cannot be shown to extend the remembered one."""

    node: str
    kind: Discontinuity
    detail: str

    def message(self) -> str:
        """What to tell the analyst: the node, what is wrong, and what to do."""
        return (
            f"node {self.node} cannot be trusted: {self.detail}. Tell the partnership's "
            f"auditor (`npcs audit --nodes {self.node}`) and do not use this node until "
            "they clear it"
        )


def check_continuity(
    node: str,
    remembered: RememberedCheckpoint | None,
    checkpoint: PublishedCheckpoint | None,
    consistency: ConsistencyFromRemembered | None,
    key: Ed25519PublicKey,
    *,
    signature_verified: bool = False,
) -> LedgerDiscontinuity | None:
    """Is `checkpoint` signed by the node's pinned ledger `key`, and does the node's
    `consistency` proof show it extends the `remembered` checkpoint? None when it does.

    `signature_verified`: the caller has just verified this checkpoint's signature under
    `key` (a verified receipt has), so it is not verified twice."""
    if checkpoint is not None and not signature_verified and not checkpoint.signed.verify(key):
        return LedgerDiscontinuity(
            node,
            "unsigned",
            f"its checkpoint of {checkpoint.size} entries is not signed by its pinned ledger key",
        )
    if remembered is None or remembered.size == 0:
        return None
    return _growth_problem(node, remembered, checkpoint, consistency)


def _growth_problem(
    node: str,
    remembered: RememberedCheckpoint,
    checkpoint: PublishedCheckpoint | None,
    consistency: ConsistencyFromRemembered | None,
) -> LedgerDiscontinuity | None:
    seen = f"the checkpoint of {remembered.size} entries remembered from {remembered.seen_at}"
    if checkpoint is None:
        return LedgerDiscontinuity(
            node, "unproven", f"it sent no checkpoint to compare with {seen}"
        )
    if checkpoint.size < remembered.size:
        return LedgerDiscontinuity(
            node,
            "shrank",
            f"its ledger shrank to {checkpoint.size} entries from {seen}: entries were "
            "removed (truncated, an older copy restored, or the ledger deleted)",
        )
    if consistency is None or consistency.old_size != remembered.size:
        return LedgerDiscontinuity(
            node,
            "unproven",
            f"it sent no consistency proof from {seen}, so it cannot show its ledger only grew",
        )
    if not tlog.verify_consistency(
        remembered.size, checkpoint.size, remembered.root, checkpoint.root, consistency.proof
    ):
        return LedgerDiscontinuity(
            node,
            "forked",
            f"its ledger of {checkpoint.size} entries does not extend {seen} (the "
            "consistency proof does not verify): its history was rewritten or forked",
        )
    return None


@dataclass(frozen=True)
class LedgerRegression:
    """A checkpoint that went back on the remembered one (which is kept)."""

    node: str
    regression: Regression
    remembered_size: int
    size: int

    def warning(self) -> str:
        """What to tell the analyst (the auditor's checks word their own findings)."""
        if self.regression == "shrank":
            return (
                f"node {self.node}'s ledger shrank from {self.remembered_size} to "
                f"{self.size} entries since last seen: tell the auditor"
            )
        return (
            f"node {self.node}'s ledger changed at size {self.size} (a fork or "
            "a rewrite): tell the auditor"
        )


class CheckpointStore:
    """The newest remembered checkpoint per partnership and node, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            create_schema(path, SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CheckpointStoreError(
                f"cannot read remembered checkpoints {path}: {exc}; restore it from a "
                "backup (deleting it loses the proof that ledgers only grew)"
            ) from exc

    def remember(
        self,
        partnership: str,
        checkpoints: Iterable[RememberedCheckpoint],
        *,
        replacing: Collection[str] = (),
    ) -> list[LedgerRegression]:
        """Keep each node's newer checkpoint, all in one transaction (one fsync for a
        whole fan-out); a checkpoint that went back on the remembered one is returned
        and not kept. The nodes named in `replacing` (a ledger reset the auditor
        accepted) have their remembered checkpoint forgotten first, in that transaction.

        Only checkpoints are compared here (same size, other root: forked); full
        consistency proofs between sizes are the auditor's job (`npcs audit`).
        """
        with transaction(self.path) as connection:
            for node in replacing:
                _delete(connection, partnership, node)
            return remember_in(connection, partnership, checkpoints)

    def forget(self, partnership: str, node: str) -> RememberedCheckpoint | None:
        """Drop the node's remembered checkpoint (after a recorded ledger reset the
        auditor cleared), so its next verified checkpoint starts a new memory."""
        with transaction(self.path) as connection:
            row = connection.execute(_SELECT_ONE, (partnership, node)).fetchone()
            _delete(connection, partnership, node)
        return None if row is None else _from_row(row)

    def latest(self, partnership: str, node: str) -> RememberedCheckpoint | None:
        with transaction(self.path) as connection:
            row = connection.execute(_SELECT_ONE, (partnership, node)).fetchone()
        return None if row is None else _from_row(row)

    def remembered(self, partnership: str) -> dict[str, RememberedCheckpoint]:
        """Every node's remembered checkpoint in `partnership`, by node name."""
        with transaction(self.path) as connection:
            rows = connection.execute(_SELECT_ALL, (partnership,)).fetchall()
        return {checkpoint.node: checkpoint for checkpoint in map(_from_row, rows)}


def remember_in(
    connection: sqlite3.Connection, partnership: str, checkpoints: Iterable[RememberedCheckpoint]
) -> list[LedgerRegression]:
    """`CheckpointStore.remember` inside the caller's transaction (the results store keeps
    a query's result and its checkpoints in one commit: one fsync per fan-out)."""
    regressions: list[LedgerRegression] = []
    for checkpoint in checkpoints:
        regression = _remember(connection, partnership, checkpoint)
        if regression is not None:
            regressions.append(regression)
    return regressions


def _from_row(row: tuple[object, ...]) -> RememberedCheckpoint:
    node, origin, size, root, signature, fingerprint, seen_at = row
    assert isinstance(root, bytes)
    assert isinstance(signature, bytes)
    return RememberedCheckpoint(
        str(node), str(origin), int(str(size)), root, signature, str(fingerprint), str(seen_at)
    )


def _delete(connection: sqlite3.Connection, partnership: str, node: str) -> None:
    connection.execute(
        "DELETE FROM checkpoints WHERE partnership = ? AND node = ?", (partnership, node)
    )


def _remember(
    connection: sqlite3.Connection, partnership: str, checkpoint: RememberedCheckpoint
) -> LedgerRegression | None:
    row = connection.execute(_SELECT_ONE, (partnership, checkpoint.node)).fetchone()
    if row is not None:
        remembered = _from_row(row)
        same_size = checkpoint.size == remembered.size
        regression = ledger_regression(
            remembered,
            size=checkpoint.size,
            root_at_remembered_size=checkpoint.root if same_size else None,
        )
        if regression is not None:
            return LedgerRegression(checkpoint.node, regression, remembered.size, checkpoint.size)
    connection.execute(
        "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            partnership,
            checkpoint.node,
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root,
            checkpoint.signature,
            checkpoint.key_fingerprint,
            checkpoint.seen_at,
        ),
    )
    return None
