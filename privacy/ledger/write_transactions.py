"""Write transactions on a ledger file: queued on a side-file lock, then BEGIN IMMEDIATE.

Writers of one file (threads or processes) take the side-file flock first, so one waiter
wakes per commit; SQLite's own locking stays the authority.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

from privacy.ledger.reader import LedgerReader


class WriteTransactions(LedgerReader):
    """A reader that may also write: `_write_transaction` and its parts."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        super().__init__(connection, path)
        self._writer_lock_fd = os.open(
            path.with_name(path.name + ".writer-lock"), os.O_RDWR | os.O_CREAT, 0o600
        )

    def _close_writer_lock(self) -> None:
        if self._writer_lock_fd >= 0:
            os.close(self._writer_lock_fd)
            self._writer_lock_fd = -1

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[None]:
        """Hold the writer's turn and one BEGIN IMMEDIATE transaction: commit when the
        block ends, roll back when it raises."""
        with self._lock, self._writer_turn():
            self._begin_immediate()
            try:
                yield
                self._commit()
            except BaseException:
                self._rollback()
                raise

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
