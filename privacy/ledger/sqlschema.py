"""The ledger's SQLite file: its tables, the connection's pragmas, and SQLITE_BUSY retries.

Every connection runs in autocommit mode (transactions are explicit), in WAL mode with
synchronous=FULL, and without SQLite's own busy handler: `retry_busy` retries with
sub-millisecond waits instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from privacy.ledger.entry import ENTRY_COLUMNS, LedgerEntry, canonical_json
from privacy.ledger.errors import LedgerBusy, LedgerFault

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 0
"""SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries, which starves
concurrent writers; the ledger retries SQLITE_BUSY itself with sub-millisecond waits."""
BUSY_RETRY_FIRST_WAIT = 0.0001
BUSY_RETRY_MAX_WAIT = 0.002
BUSY_DEADLINE_SECONDS = 120.0
"""How long a writer keeps retrying SQLITE_BUSY before reporting a fault."""

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
CREATE TABLE IF NOT EXISTS verified_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    totals TEXT NOT NULL,
    signature BLOB NOT NULL
);
"""

# Built from the constant column list, never from input.
SELECT_ENTRY = f"SELECT {', '.join(ENTRY_COLUMNS)}, leaf_hash FROM entries"  # noqa: S608
INSERT_ENTRY = (
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}, leaf_hash) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(ENTRY_COLUMNS) + 1))})"
)

T = TypeVar("T")


def create_schema(connection: sqlite3.Connection) -> None:
    """Create the tables that do not exist yet (inside the caller's transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)


def connect(path: Path) -> sqlite3.Connection:
    """Open the ledger file: autocommit, no busy handler, WAL, synchronous=FULL."""
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
            if not is_busy(exc) or time.monotonic() > deadline:
                raise LedgerFault(f"cannot switch the ledger to WAL mode: {exc}") from exc
            time.sleep(0.005)
            continue
        if str(mode).lower() != "wal":
            raise LedgerFault(f"the ledger database refused WAL mode (got {mode!r})")
        return


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock; try again."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_busy(operation: Callable[[], T], path: Path) -> T:
    """Run `operation`, retrying while the database is busy, up to BUSY_DEADLINE_SECONDS;
    the deadline becomes LedgerBusy (transient), any other database error a LedgerFault.
    Both name `path`: they are for the operator's log, never for a client."""
    deadline = time.monotonic() + BUSY_DEADLINE_SECONDS
    delay = BUSY_RETRY_FIRST_WAIT
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise LedgerFault(f"ledger database error at {path}: {exc}") from exc
            if time.monotonic() > deadline:
                raise LedgerBusy(f"the ledger at {path} stayed locked: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 1.5, BUSY_RETRY_MAX_WAIT)


def entry_from_row(row: Sequence[Any]) -> LedgerEntry:
    """The entry of a `SELECT_ENTRY` row (its trailing leaf_hash column is ignored)."""
    return LedgerEntry(**_row_values(row))


def entry_and_leaf_data(row: Sequence[Any]) -> tuple[LedgerEntry, bytes]:
    """The entry of a `SELECT_ENTRY` row and its leaf data (canonical bytes), from one
    pass over the stored values (what verification hashes)."""
    values = _row_values(row)
    return LedgerEntry(**values), canonical_json(values)


def _row_values(row: Sequence[Any]) -> dict[str, Any]:
    values = dict(zip(ENTRY_COLUMNS, row, strict=False))
    for name in ("canonical_query", "answer"):
        values[name] = bytes(values[name])
    if values["signed_request"] is not None:
        values["signed_request"] = bytes(values["signed_request"])
    return values


def require_same_identity(meta: dict[str, str], path: Path, origin: str, fingerprint: str) -> None:
    """Refuse a ledger made with another origin or another ledger key."""
    if meta.get("origin") != origin:
        raise LedgerFault(
            f"the ledger at {path} belongs to origin {meta.get('origin')!r}, not {origin!r}"
        )
    if meta.get("key_fingerprint") != fingerprint:
        raise LedgerFault(
            f"the ledger at {path} was signed with ledger key "
            f"{meta.get('key_fingerprint')}, but this node's key is {fingerprint}"
        )
