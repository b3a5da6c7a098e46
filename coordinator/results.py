"""The local results store: every release the analyst received, kept for re-use.

SQLite under the user's data directory ($NPCS_DATA_DIR, else $XDG_DATA_HOME/npcs, else
~/.local/share/npcs). A result holds the query, each node's answer exactly as received
(release bytes, ledger receipt, whether the receipt verified) and the report built from
them, so `npcs results show/export` re-use released numbers at no privacy cost. The
store also remembers each node's latest ledger checkpoint, so a node whose ledger later
shrinks or forks is noticed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from coordinator.report import Report

DATA_DIR_ENV = "NPCS_DATA_DIR"
DATABASE_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY,
    query_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    partnership TEXT NOT NULL,
    dataset TEXT NOT NULL,
    statistic TEXT NOT NULL,
    purpose TEXT NOT NULL,
    query_json TEXT NOT NULL,
    report_json TEXT NOT NULL,
    nodes_answered INTEGER NOT NULL,
    nodes_asked INTEGER NOT NULL,
    unverified_receipts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_query ON results(query_id);
CREATE TABLE IF NOT EXISTS answers (
    result_id TEXT NOT NULL REFERENCES results(result_id),
    node TEXT NOT NULL,
    release_bytes BLOB NOT NULL,
    receipt_json TEXT NOT NULL,
    receipt_verified INTEGER NOT NULL,
    receipt_problem TEXT,
    PRIMARY KEY (result_id, node)
);
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


class ResultNotFoundError(LookupError):
    pass


def default_data_dir() -> Path:
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "npcs"


@dataclass(frozen=True)
class StoredAnswer:
    """One node's answer exactly as received."""

    node: str
    release_bytes: bytes
    receipt: dict[str, object]
    """Receipt as JSON: entry_index, tree_size, inclusion_proof (hex), leaf_data (base64),
    replayed, checkpoint {origin, size, root (hex), signature (base64), key_fingerprint}."""
    receipt_verified: bool
    receipt_problem: str | None = None


@dataclass(frozen=True)
class ResultSummary:
    result_id: str
    query_id: str
    created_at: str
    dataset: str
    statistic: str
    purpose: str
    nodes_answered: int
    nodes_asked: int
    unverified_receipts: int


@dataclass(frozen=True)
class RememberedCheckpoint:
    node: str
    origin: str
    size: int
    root: bytes
    signature: bytes
    key_fingerprint: str
    seen_at: str


class ResultsStore:
    """One SQLite file; each method opens its own short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    @classmethod
    def open_default(cls, data_dir: Path | None = None) -> ResultsStore:
        return cls((data_dir or default_data_dir()) / DATABASE_NAME)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            with connection:
                yield connection

    def save(self, report: Report, answers: Sequence[StoredAnswer]) -> None:
        """Keep a result and the answers behind it, in one transaction."""
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.result_id,
                    report.query_id,
                    report.created_at,
                    report.partnership,
                    report.dataset,
                    report.statistic,
                    report.purpose,
                    json.dumps(report.query, sort_keys=True),
                    report.model_dump_json(),
                    sum(1 for s in report.nodes if s.answered),
                    len(report.nodes),
                    len(report.unverified_nodes),
                ),
            )
            connection.executemany(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        report.result_id,
                        answer.node,
                        answer.release_bytes,
                        json.dumps(answer.receipt, sort_keys=True),
                        int(answer.receipt_verified),
                        answer.receipt_problem,
                    )
                    for answer in answers
                ],
            )

    def list_results(self, limit: int = 50) -> list[ResultSummary]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT result_id, query_id, created_at, dataset, statistic, purpose, "
                "nodes_answered, nodes_asked, unverified_receipts FROM results "
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [ResultSummary(*row) for row in rows]

    def resolve_id(self, prefix: str) -> str:
        """A full result id from a unique prefix (ids are UUIDs; 8 characters usually do)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT result_id FROM results WHERE result_id LIKE ? ESCAPE '\\' LIMIT 2",
                (_like_prefix(prefix),),
            ).fetchall()
        if not rows:
            raise ResultNotFoundError(
                f"no stored result has an id starting {prefix!r}: see `npcs results list`"
            )
        if len(rows) > 1:
            raise ResultNotFoundError(
                f"result id prefix {prefix!r} is ambiguous: give more characters"
            )
        return str(rows[0][0])

    def report(self, result_id: str) -> Report:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT report_json FROM results WHERE result_id = ?", (result_id,)
            ).fetchone()
        if row is None:
            raise ResultNotFoundError(f"no stored result {result_id!r}: see `npcs results list`")
        return Report.model_validate_json(row[0])

    def answers(self, result_id: str) -> list[StoredAnswer]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT node, release_bytes, receipt_json, receipt_verified, receipt_problem "
                "FROM answers WHERE result_id = ? ORDER BY rowid",
                (result_id,),
            ).fetchall()
        return [
            StoredAnswer(
                node=node,
                release_bytes=bytes(release),
                receipt=json.loads(receipt),
                receipt_verified=bool(verified),
                receipt_problem=problem,
            )
            for node, release, receipt, verified, problem in rows
        ]

    def remember_checkpoint(self, partnership: str, checkpoint: RememberedCheckpoint) -> str | None:
        """Keep one node's newest verified checkpoint; see `remember_checkpoints`."""
        warnings = self.remember_checkpoints(partnership, [checkpoint])
        return warnings[0] if warnings else None

    def remember_checkpoints(
        self, partnership: str, checkpoints: Iterable[RememberedCheckpoint]
    ) -> list[str]:
        """Keep each node's newest verified checkpoint, in one transaction (one fsync for
        a whole fan-out); return a warning for each ledger that went backwards.

        A smaller size than remembered means the ledger shrank; the same size with a
        different root means it forked. Either is reported and the old one is kept.
        Full consistency proofs between sizes are the auditor's job (`npcs audit`).
        """
        with self._connect() as connection:
            warnings = [_remember(connection, partnership, c) for c in checkpoints]
        return [warning for warning in warnings if warning is not None]

    def latest_checkpoint(self, partnership: str, node: str) -> RememberedCheckpoint | None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT node, origin, size, root, signature, key_fingerprint, seen_at "
                "FROM checkpoints WHERE partnership = ? AND node = ?",
                (partnership, node),
            ).fetchone()
        if row is None:
            return None
        node_name, origin, size, root, signature, fingerprint, seen_at = row
        return RememberedCheckpoint(
            node_name, origin, int(size), bytes(root), bytes(signature), fingerprint, seen_at
        )


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _remember(
    connection: sqlite3.Connection, partnership: str, checkpoint: RememberedCheckpoint
) -> str | None:
    row = connection.execute(
        "SELECT size, root FROM checkpoints WHERE partnership = ? AND node = ?",
        (partnership, checkpoint.node),
    ).fetchone()
    if row is not None:
        size, root = int(row[0]), bytes(row[1])
        if checkpoint.size < size:
            return (
                f"node {checkpoint.node}'s ledger shrank from {size} to "
                f"{checkpoint.size} entries since last seen: tell the auditor"
            )
        if checkpoint.size == size and checkpoint.root != root:
            return (
                f"node {checkpoint.node}'s ledger changed at size {size} (a fork or "
                "a rewrite): tell the auditor"
            )
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
