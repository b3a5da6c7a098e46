"""The high-water marker file (issue 12, deliver 4): two fixed slots written in place
alternately, one fdatasync per raise, a torn slot skipped, the old format still read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kernel.files import atomic_write_text
from kernel.keyfiles import generate_ed25519_key
from node.high_water_slots import SLOT_BYTES, HighWaterFile
from privacy import tlog
from privacy.ledger.high_water import HighWaterMark, SignedHighWaterMark

ORIGIN = "npcs/p/node-a/ledger"
KEY = generate_ed25519_key()


def marker(size: int) -> SignedHighWaterMark:
    root = tlog.leaf_hash(str(size).encode())
    checkpoint = tlog.Checkpoint(ORIGIN, size, root).sign(KEY)
    return HighWaterMark.of(checkpoint).sign(KEY)


def _slot_sizes(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[n * SLOT_BYTES :].split(b"\n", 1)[0] for n in range(2)]


def test_raises_alternate_between_two_slots_of_a_fixed_size_file(tmp_path: Path) -> None:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    assert store.load() is None
    for size in range(1, 6):
        store.save(marker(size))
        assert store.load() == marker(size)
        assert store.path.stat().st_size == 2 * SLOT_BYTES
    assert sorted(_slot_sizes(store.path)) == [b"slot 4", b"slot 5"]
    assert store.path.stat().st_mode & 0o777 == 0o600


def test_a_raise_costs_one_fdatasync_and_no_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    store.save(marker(1))
    calls: list[str] = []
    for name in ("fsync", "fdatasync", "replace", "rename"):
        real = getattr(os, name)

        def counted(*args: object, _name: str = name, _real: object = real) -> object:
            calls.append(_name)
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(os, name, counted)
    store.save(marker(2))
    assert calls == ["fdatasync"]
    assert store.load() == marker(2)


def test_a_torn_slot_is_skipped_and_the_other_slot_holds_the_previous_mark(
    tmp_path: Path,
) -> None:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    for size in (1, 2, 3):
        store.save(marker(size))
    # The next raise (4) goes over the slot that does not hold 3.
    newest_slot = 0 if _slot_sizes(store.path)[0] == b"slot 3" else 1
    target = 1 - newest_slot
    fresh = ("slot 4\n" + marker(4).to_text() + "end 4\n").encode()
    with store.path.open("r+b") as handle:  # a power cut after the first 100 bytes
        handle.seek(target * SLOT_BYTES)
        handle.write(fresh[:100])
    assert store.load() == marker(3)
    store.save(marker(4))  # the torn slot is the one overwritten next
    assert store.load() == marker(4)


def test_a_marker_in_the_format_before_slots_is_read_and_converted(tmp_path: Path) -> None:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    atomic_write_text(store.path, marker(7).to_text(), mode=0o600)
    assert store.load() == marker(7)
    store.save(marker(8))
    assert store.path.stat().st_size == 2 * SLOT_BYTES
    assert sorted(_slot_sizes(store.path)) == [b"slot 7", b"slot 8"]
    assert store.load() == marker(8)


def test_a_smaller_mark_saved_on_purpose_replaces_both_slots(tmp_path: Path) -> None:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    for size in (5, 6):
        store.save(marker(size))
    store.save(marker(1))  # what `npcs-node ledger reset` does
    assert store.load() == marker(1)
    assert _slot_sizes(store.path) == [b"slot 1", b"slot 1"]
