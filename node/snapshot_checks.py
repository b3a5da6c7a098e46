"""A snapshot is served only if its Parquet file still has the sha256 its manifest records.

Snapshots are immutable, so a file that changed since ingest was changed outside
npcs-node (a disk fault, a restore gone wrong, a hand edit): the node must not answer
from it. Hashing costs a read of the file, so each file is verified once per process and
again only when its size or modification time changes.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.store import Snapshot


class SnapshotIntegrityError(RuntimeError):
    """A snapshot's file does not match its manifest; it must not be served."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class VerifiedSnapshots:
    """Remembers which snapshot files were verified (thread-safe)."""

    def __init__(self) -> None:
        self._verified: set[tuple[str, str, int, int]] = set()
        self._lock = threading.Lock()

    def check(self, snapshot: Snapshot) -> None:
        """Raise SnapshotIntegrityError unless the file's sha256 is the manifest's."""
        info = snapshot.path.stat()
        key = (str(snapshot.path), snapshot.sha256, info.st_size, info.st_mtime_ns)
        with self._lock:
            if key in self._verified:
                return
        if file_sha256(snapshot.path) != snapshot.sha256:
            raise SnapshotIntegrityError(
                f"snapshot {snapshot.snapshot_id} of {snapshot.dataset} does not match the "
                "sha256 in its manifest: its file was changed outside npcs-node, so the node "
                "will not answer from it. Roll back to an earlier snapshot "
                f"(`npcs-node snapshots rollback DIR {snapshot.dataset}`) or ingest the data "
                "again."
            )
        with self._lock:
            self._verified.add(key)
