"""Where and how the coordinator keeps its local SQLite files (results, checkpoints).

The user's data directory is $NPCS_DATA_DIR, else $XDG_DATA_HOME/npcs, else
~/.local/share/npcs. Every store opens a short connection per operation, in WAL mode,
and runs the operation as one transaction (one fsync per commit).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

DATA_DIR_ENV = "NPCS_DATA_DIR"
BUSY_TIMEOUT_SECONDS = 10.0


def default_data_dir() -> Path:
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "npcs"


@contextmanager
def transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to `path` inside one transaction: committed on success, else rolled back."""
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        with connection:
            yield connection


def create_schema(path: Path, schema: str) -> None:
    """Create the folder and the tables of `schema` (statements with IF NOT EXISTS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with transaction(path) as connection:
        connection.executescript(schema)
