"""One `serve` per node folder: an exclusive lock held for the life of the server.

Two servers on one folder would answer from one ledger and one budget with two
processes' state (replay guards, health). `serve` takes `flock(LOCK_EX | LOCK_NB)` on
`serve.lock` in the folder and keeps the descriptor open until it stops; the kernel
releases the lock when the process exits, even on kill -9, so a stale file never blocks.
The file holds the owner's pid, for the error message only.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kernel.files import PRIVATE_FILE_MODE
from node.errors import NodeSetupError

LOCK_FILE = "serve.lock"


class NodeAlreadyServingError(NodeSetupError):
    """Another process is serving this node folder."""


@contextmanager
def exclusive_serve_lock(root: Path) -> Iterator[None]:
    """Hold the folder's serve lock, or raise NodeAlreadyServingError at once."""
    path = root / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "?"
            raise NodeAlreadyServingError(
                f"another `npcs-node serve` (pid {owner}) is already serving {root}; "
                "stop it first: two servers must never share one node folder and ledger"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock
