"""Crash-safe file writes: a reader sees the old file or the whole new one, never half.

Every write goes to a uniquely named temporary file in the same folder, is flushed and
fsync'd, gets its mode pinned exactly (whatever the umask), and is renamed over the
target; the folder is then fsync'd so the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


def fsync_directory(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = PUBLIC_FILE_MODE) -> None:
    """Replace (or create) `path` with `data` atomically and durably."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_new_file(temporary, data, mode)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = PUBLIC_FILE_MODE) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def create_exclusive(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Create `path` (which must not exist) with exactly `mode`, write `data`, fsync.

    Raises FileExistsError when `path` exists, so a key or a ledger is never overwritten.
    """
    _write_new_file(path, data, mode)
    fsync_directory(path.parent)


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (never an existing one) with exactly `mode`, write `data`, fsync."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    # The umask may have narrowed the mode further, never widened it; pin it exactly.
    os.fchmod(descriptor, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
