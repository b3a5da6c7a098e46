"""The local results store: every release the analyst received, kept for re-use.

SQLite under the user's data directory (`coordinator.local_store`). A result holds the
query, each node's answer exactly as received (release bytes, ledger receipt, whether
the receipt verified) and the report built from them, so `npcs results show/export`
re-use released numbers at no privacy cost. The same file holds the analyst's
remembered checkpoints (`coordinator.checkpoints`), so a node whose ledger later
shrinks or forks is noticed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from coordinator.checkpoints import (
    CheckpointStore,
    LedgerRegression,
    RememberedCheckpoint,
    remember_in,
)
from coordinator.errors import CoordinatorError
from coordinator.local_store import create_schema, default_data_dir, transaction
from coordinator.report import Report

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
"""


class ResultNotFoundError(CoordinatorError, LookupError):
    """No stored result has the id (or the id prefix is ambiguous)."""


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


class ResultsStore:
    """One SQLite file; each method opens its own short transaction."""

    checkpoints: CheckpointStore
    """The analyst's remembered checkpoints, kept in the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        create_schema(path, _SCHEMA)
        self.checkpoints = CheckpointStore(path)

    @classmethod
    def open_default(cls, data_dir: Path | None = None) -> ResultsStore:
        return cls((data_dir or default_data_dir()) / DATABASE_NAME)

    def save(
        self,
        report: Report,
        answers: Sequence[StoredAnswer],
        checkpoints: Sequence[RememberedCheckpoint] = (),
    ) -> list[LedgerRegression]:
        """Keep a result, the answers behind it and the nodes' newly verified
        `checkpoints` (`CheckpointStore.remember`), all in one transaction (one fsync per
        query); returns the checkpoints that went back on the remembered ones."""
        with transaction(self.path) as connection:
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
            return remember_in(connection, report.partnership, checkpoints)

    def list_results(self, limit: int = 50) -> list[ResultSummary]:
        with transaction(self.path) as connection:
            rows = connection.execute(
                "SELECT result_id, query_id, created_at, dataset, statistic, purpose, "
                "nodes_answered, nodes_asked, unverified_receipts FROM results "
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [ResultSummary(*row) for row in rows]

    def resolve_id(self, prefix: str) -> str:
        """A full result id from a unique prefix (ids are UUIDs; 8 characters usually do)."""
        with transaction(self.path) as connection:
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
        with transaction(self.path) as connection:
            row = connection.execute(
                "SELECT report_json FROM results WHERE result_id = ?", (result_id,)
            ).fetchone()
        if row is None:
            raise ResultNotFoundError(f"no stored result {result_id!r}: see `npcs results list`")
        return Report.model_validate_json(row[0])

    def answers(self, result_id: str) -> list[StoredAnswer]:
        with transaction(self.path) as connection:
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


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
