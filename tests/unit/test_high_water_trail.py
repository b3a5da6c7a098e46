"""The high-water mark is raised a few ms behind the commits (privacy.ledger.high_water_trail):
never ahead of the ledger, never lowered, exact once the ledger closes, off the charge's
path, and a marker that cannot be written refuses the next charge without charging it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from support_ledger import charge_request

from kernel.keyfiles import generate_ed25519_key
from node.high_water_slots import HighWaterFile
from privacy.ledger.errors import LedgerFault
from privacy.ledger.high_water import SignedHighWaterMark
from privacy.ledger.reader import LedgerReader
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy

ORIGIN = "npcs/p/node-a/ledger"
KEY = generate_ed25519_key()
POLICY = BudgetPolicy({"child": 10**12}, 10**6)
ANSWER = b"answer"


def open_ledger(path: Path, store: object) -> Ledger:
    return Ledger.open(path, origin=ORIGIN, signing_key=KEY, policy=POLICY, high_water=store)  # type: ignore[arg-type]


def charge(ledger: Ledger, query_id: str) -> None:
    ledger.charge_and_release(charge_request(query_id, query_id.encode()), lambda: ANSWER)


def marked_size(store: HighWaterFile) -> int:
    marker = store.load()
    return 0 if marker is None else marker.mark.size


def test_a_closed_ledgers_marker_is_exactly_its_last_checkpoint(tmp_path: Path) -> None:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    with open_ledger(tmp_path / "ledger.sqlite", store) as ledger:
        for number in range(40):
            charge(ledger, f"q{number}")
        last = ledger.latest_checkpoint()
    marker = store.load()
    assert marker is not None
    assert (marker.mark.size, marker.mark.root) == (last.checkpoint.size, last.checkpoint.root)
    assert marker.mark.size == 40


def test_two_writers_marks_only_grow_and_never_run_ahead_of_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    marker_path = tmp_path / "ledger.high-water"
    open_ledger(path, HighWaterFile(marker_path)).close()  # create it
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        store = HighWaterFile(marker_path)
        with LedgerReader.open_existing(path) as reader:
            while not stop.is_set():
                marked = marked_size(store)
                seen.append((marked, reader.size()))  # the ledger is read after the marker

    def write(name: str) -> None:
        with open_ledger(path, HighWaterFile(marker_path)) as ledger:
            for number in range(60):
                charge(ledger, f"{name}-{number}")

    watcher = threading.Thread(target=watch)
    writers = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    watcher.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    watcher.join()
    marks = [marked for marked, _ in seen]
    assert marks == sorted(marks), "the mark went down"
    assert all(marked <= size for marked, size in seen), "the mark ran ahead of the ledger"
    with LedgerReader.open_existing(path) as reader:
        assert marked_size(HighWaterFile(marker_path)) == reader.size()


class HeldStore:
    """The real marker file, whose writes wait until the test lets them go."""

    def __init__(self, path: Path) -> None:
        self.file = HighWaterFile(path)
        self.release = threading.Event()

    def load(self) -> SignedHighWaterMark | None:
        return self.file.load()

    def save(self, marker: SignedHighWaterMark) -> None:
        assert self.release.wait(timeout=60)
        self.file.save(marker)

    def exclusive(self) -> AbstractContextManager[None]:
        return self.file.exclusive()


def test_a_charge_returns_without_waiting_for_the_marker_write(tmp_path: Path) -> None:
    store = HeldStore(tmp_path / "ledger.high-water")
    ledger = open_ledger(tmp_path / "ledger.sqlite", store)
    store.release.set()
    charge(ledger, "first")
    ledger.startup_check()  # waits for the trail: the first mark is written
    store.release.clear()
    for number in range(5):
        charge(ledger, f"held-{number}")  # returns while the marker write is held
    assert marked_size(store.file) == 1
    store.release.set()
    ledger.close()
    assert marked_size(store.file) == 6


@pytest.fixture
def broken_marker(tmp_path: Path) -> Iterator[tuple[Ledger, HighWaterFile]]:
    store = HighWaterFile(tmp_path / "ledger.high-water")
    ledger = open_ledger(tmp_path / "ledger.sqlite", store)
    charge(ledger, "before")
    ledger.startup_check()
    store.path.unlink()
    store.path.mkdir()  # a marker that cannot be read or written, even by root
    try:
        yield ledger, store
    finally:
        if store.path.is_dir():
            shutil.rmtree(store.path)
        ledger.close()


def test_a_marker_that_cannot_be_raised_refuses_the_next_charge_and_charges_nothing(
    broken_marker: tuple[Ledger, HighWaterFile],
) -> None:
    ledger, store = broken_marker
    charge(ledger, "committed, then its mark fails")
    with pytest.raises(LedgerFault, match="high-water"):
        ledger.startup_check()  # waits for the trail, which failed
    size = ledger.size()
    released: list[str] = []

    def release() -> bytes:
        released.append("ran")
        return ANSWER

    with pytest.raises(LedgerFault, match="high-water"):
        ledger.charge_and_release(charge_request("refused", b"refused"), release)
    assert released == []
    assert ledger.size() == size
    assert ledger.entry_by_query_id("refused") is None

    shutil.rmtree(store.path)  # repaired: the marker is raised again on the next charge
    charge(ledger, "after the repair")
    ledger.startup_check()
    assert marked_size(store) == ledger.size()
