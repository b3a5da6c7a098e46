"""The high-water marker file: two fixed slots, overwritten in place alternately.

Raising the mark costs one `pwrite` and one `fdatasync` of a file whose size never
changes (no rename, no folder fsync): the new mark goes into the slot that does not hold
the newest one. A write torn by a power cut damages only that slot; the other still holds
the previous mark, which is all the ledger had committed and served before the crash.

Each slot lies in its own 4 KiB block and is framed by `slot SIZE` and `end SIZE` lines
around the signed marker text (privacy.ledger.high_water), so a torn slot (old and new
bytes mixed) does not parse and is skipped. A slot that parses but whose signature does
not verify is not torn: it was altered, and the node refuses it (see `node.high_water`).

A marker in the format before slots (the bare signed text, replaced by rename) is still
read; the first raise rewrites the file in the slot format, atomically, once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kernel.files import PRIVATE_FILE_MODE, atomic_write_bytes
from privacy.ledger.high_water import (
    HEADER,
    HighWaterFormatError,
    SignedHighWaterMark,
)

SLOT_BYTES = 4096
SLOTS = 2


def _encode(marker: SignedHighWaterMark) -> bytes:
    size = marker.mark.size
    framed = f"slot {size}\n{marker.to_text()}end {size}\n".encode()
    if len(framed) > SLOT_BYTES:
        raise HighWaterFormatError(f"a marker must fit in {SLOT_BYTES} bytes")
    return framed.ljust(SLOT_BYTES, b"\0")


Slot = tuple[int, SignedHighWaterMark] | None
"""A slot's frame number (the size it was written for) and marker; None: empty or torn."""


def _decode(block: bytes) -> Slot:
    """The marker in one slot. Raises HighWaterFormatError for a complete frame whose
    marker text is malformed (not a torn write: an altered one)."""
    text = block.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    lines = text.split("\n")
    if len(lines) < 3 or lines[-1] != "" or not lines[0].startswith("slot "):
        return None
    frame = lines[0].removeprefix("slot ")
    if not frame.isdigit() or lines[-2] != f"end {frame}":
        return None
    return int(frame), SignedHighWaterMark.from_text("\n".join(lines[1:-2]) + "\n")


class HighWaterFile:
    """A `HighWaterStore` in two slots of one file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """An exclusive `flock` on a lock file beside the marker (0600), held while inside:
        the marker file itself may be replaced by rename, so it cannot carry the lock."""
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def load(self) -> SignedHighWaterMark | None:
        """The newest marker in the file (None if there is no file or no slot holds one)."""
        slots = self._slots()
        newest = None if slots is None else _newest(slots)
        return None if newest is None else newest[1]

    def save(self, marker: SignedHighWaterMark) -> None:
        """Write `marker` over the slot that does not hold the newest mark; fdatasync.
        A marker smaller than the newest (a recorded reset) replaces the whole file."""
        slots = self._slots()
        if slots is None or len(slots) == 1:  # no file, or the format before slots
            older = _encode(slots[0][1]) if slots and slots[0] else bytes(SLOT_BYTES)
            atomic_write_bytes(self.path, older + _encode(marker), mode=PRIVATE_FILE_MODE)
            return
        newest = _newest(slots)
        if newest is not None and newest[1].mark.size > marker.mark.size:
            # Lowered on purpose (`ledger reset`): no slot may keep the larger mark.
            atomic_write_bytes(self.path, _encode(marker) * SLOTS, mode=PRIVATE_FILE_MODE)
            return
        target = 0 if newest is None else 1 - newest[0]
        descriptor = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(descriptor, _encode(marker), target * SLOT_BYTES)
            os.fdatasync(descriptor)
        finally:
            os.close(descriptor)

    def _slots(self) -> list[Slot] | None:
        """Each slot's marker; a one-item list for a marker in the format before slots;
        None when there is no file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if data.startswith(HEADER.encode()):
            marker = SignedHighWaterMark.from_text(data.decode("utf-8"))
            return [(marker.mark.size, marker)]
        if len(data) != SLOT_BYTES * SLOTS:
            raise HighWaterFormatError(
                f"the marker file is {len(data)} bytes, expected {SLOT_BYTES * SLOTS}"
            )
        return [_decode(data[n * SLOT_BYTES : (n + 1) * SLOT_BYTES]) for n in range(SLOTS)]


def _newest(slots: list[Slot]) -> tuple[int, SignedHighWaterMark] | None:
    """The index and marker of the slot written for the largest size (None: all empty)."""
    held = [(slot[0], index, slot[1]) for index, slot in enumerate(slots) if slot is not None]
    if not held:
        return None
    _, index, marker = max(held, key=lambda item: (item[0], item[1]))
    return index, marker
