"""`ledger verify` checks chunks of entries side by side (rows re-hashed, checkpoint
signatures verified in batches, on a real process pool or in one process) and folds them
in order: whatever it finds inside a large batch is found and named."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support_ledger import filled_ledger

from kernel.keyfiles import generate_ed25519_key
from privacy import tlog
from privacy.ledger.range_check import check_range
from privacy.ledger.reader import LedgerReader
from privacy.ledger.signature_batch import bad_signatures
from privacy.ledger.verifier import CHUNK_ENTRIES, Audit, AuditState, read_chunk
from privacy.policy import BudgetPolicy

ORIGIN = "npcs/test/node-a/ledger"
ENTRIES = CHUNK_ENTRIES + 904
"""Two chunks: the second one partly filled."""
BAD_SIZE = CHUNK_ENTRIES + 404
"""A checkpoint in the middle of the second chunk."""


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_ed25519_key()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, key: Ed25519PrivateKey) -> Path:
    path = tmp_path_factory.mktemp("large") / "ledger.sqlite"
    filled_ledger(path, ENTRIES, ORIGIN, key, BudgetPolicy({"child": 10**12}, 10**6)).close()
    return path


@pytest.fixture(scope="module", params=["one process", "process pool"])
def pool(request: pytest.FixtureRequest) -> Iterator[Executor | None]:
    if request.param == "one process":
        yield None
        return
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as executor:
        yield executor


def tampered(pristine: Path, tmp_path: Path, sql: str, parameters: tuple[object, ...]) -> Path:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(pristine, path)
    with sqlite3.connect(path) as connection:
        connection.execute(sql, parameters)
    connection.close()
    return path


def stored_signature(path: Path, size: int) -> bytes:
    with sqlite3.connect(path) as connection:
        (signature,) = connection.execute(
            "SELECT signature FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
    connection.close()
    return bytes(signature)


def test_the_untouched_large_ledger_verifies(
    pristine: Path, key: Ed25519PrivateKey, pool: Executor | None
) -> None:
    with LedgerReader.open_existing(pristine) as reader:
        report = reader.verify(key.public_key(), pool=pool)
        assert report.ok, report.problems
        assert (report.size, report.root) == (ENTRIES, reader.root())


def test_one_bad_signature_among_thousands_is_found_and_named(
    pristine: Path, key: Ed25519PrivateKey, pool: Executor | None, tmp_path: Path
) -> None:
    # A well-formed, valid signature by the right key, over the neighbouring checkpoint.
    path = tampered(
        pristine,
        tmp_path,
        "UPDATE checkpoints SET signature = ? WHERE size = ?",
        (stored_signature(pristine, BAD_SIZE - 1), BAD_SIZE),
    )
    with LedgerReader.open_existing(path) as reader:
        report = reader.verify(key.public_key(), pool=pool)
    assert report.problems == [f"the checkpoint at size {BAD_SIZE} has a bad signature"]


def test_a_changed_entry_in_a_later_chunk_is_found_and_named(
    pristine: Path, key: Ed25519PrivateKey, pool: Executor | None, tmp_path: Path
) -> None:
    seq = BAD_SIZE - 1
    path = tampered(pristine, tmp_path, "UPDATE entries SET cost_units = 0 WHERE seq = ?", (seq,))
    with LedgerReader.open_existing(path) as reader:
        report = reader.verify(key.public_key(), pool=pool)
    assert not report.ok
    assert report.first_bad_entry == seq
    assert report.problems[0] == f"entry {seq} (q{seq}) does not match its leaf hash"


def test_every_bad_signature_in_a_batch_is_named() -> None:
    key = generate_ed25519_key()
    raw_key = tlog.raw_public_key(key.public_key())
    batch = []
    for size in range(1, 2049):
        root = tlog.leaf_hash(str(size).encode())
        signature = tlog.Checkpoint(ORIGIN, size, root).sign(key).signature
        if size == 1000:  # one bit flipped
            signature = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
        elif size == 2000:  # too short to be a signature
            signature = signature[:63]
        batch.append((size, root, signature))
    assert bad_signatures(raw_key, ORIGIN, batch) == [1000, 2000]


def test_rows_that_change_between_the_two_reads_are_reported(
    pristine: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """The range check (a pool worker's own read) and the audit's snapshot must agree:
    a row changed in between is a problem, never silently mixed in."""
    path = tmp_path / "ledger.sqlite"
    shutil.copy(pristine, path)
    connection = sqlite3.connect(path, isolation_level=None)
    chunk = read_chunk(connection, 0, CHUNK_ENTRIES)  # what the audit read first
    connection.execute("UPDATE entries SET answer = x'00' WHERE seq = 7")
    connection.execute("UPDATE checkpoints SET signature = ? WHERE size = 9", (bytes(64),))
    raw_key = tlog.raw_public_key(key.public_key())
    checked = check_range(connection, ORIGIN, raw_key, 0, CHUNK_ENTRIES)  # then the worker
    connection.close()
    state = AuditState()
    audit = Audit(state=state, public_key=key.public_key(), origin=ORIGIN, verify_signatures=True)
    assert audit.add_chunk(chunk, checked)
    assert state.first_bad_entry == 7
    assert (
        "the checkpoints of entries 0..4095 changed while their signatures were being verified"
        in state.problems
    )
