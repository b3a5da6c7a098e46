"""Tamper evidence: any changed field, deleted row, truncation or re-signed rewrite is found."""

from __future__ import annotations

import functools
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support_ledger import charge_request

from kernel.keyfiles import generate_ed25519_key
from privacy import tlog
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.reader import LedgerReader
from privacy.ledger.verifier import SelfCheckReport
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy
from privacy.tlog import Checkpoint, SignedCheckpoint

ORIGIN = "npcs/test/node-a/ledger"
ENTRIES = 8
ENTRY_COLUMNS = [
    "seq", "time", "query_id", "analyst", "dataset", "statistic", "signed_request",
    "canonical_query", "query_hash", "purpose", "mechanism_summary", "cost_units", "epsilon",
    "delta", "opendp_version", "snapshot_id", "status", "answer", "leaf_hash",
]  # fmt: skip


def charge(number: int) -> ChargeRequest:
    return charge_request(
        f"q{number}",
        f'{{"n":{number}}}'.encode(),
        analyst="alice" if number % 2 else "bob",
        purpose="audit test",
        cost_units=1000 + number,
        signed_request=None if number == 2 else b"sig",
    )


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_ed25519_key()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, key: Ed25519PrivateKey) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "ledger.sqlite"
    policy = BudgetPolicy({"child": 10**6}, 10**6)
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=policy) as ledger:
        for number in range(ENTRIES):
            ledger.charge_and_release(
                charge(number), functools.partial(bytes, f"answer {number}".encode())
            )
    return path


@pytest.fixture(scope="module")
def remembered(pristine: Path) -> list[SignedCheckpoint]:
    """What an auditor kept: every checkpoint handed out with an answer."""
    with LedgerReader.open_existing(pristine) as reader:
        return [signed for _, signed in reader.checkpoints() if signed.checkpoint.size > 0]


def tampered_copy(
    pristine: Path, tmp_path: Path, *statements: tuple[str, tuple[object, ...]]
) -> Path:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(pristine, path)
    connection = sqlite3.connect(path)
    with connection:
        for sql, parameters in statements:
            connection.execute(sql, parameters)
    connection.close()
    return path


def verify(
    path: Path, key: Ed25519PrivateKey, remembered: list[SignedCheckpoint]
) -> SelfCheckReport:
    with LedgerReader.open_existing(path) as reader:
        return reader.verify(key.public_key(), remembered=remembered)


def changed(value: object) -> object:
    if value is None:
        return b"injected"
    if isinstance(value, bytes):
        return value + b"!"
    if isinstance(value, int):
        return value + 1
    assert isinstance(value, str)
    return value + "!"


def test_the_untouched_ledger_verifies(
    pristine: Path, key: Ed25519PrivateKey, remembered: list[SignedCheckpoint]
) -> None:
    report = verify(pristine, key, remembered)
    assert report.ok, report.problems
    assert report.size == ENTRIES


@pytest.mark.parametrize("column", ENTRY_COLUMNS)
def test_changing_any_field_of_any_row_is_detected_and_named(
    column: str,
    pristine: Path,
    key: Ed25519PrivateKey,
    remembered: list[SignedCheckpoint],
    tmp_path: Path,
) -> None:
    connection = sqlite3.connect(pristine)
    values = [row[0] for row in connection.execute(f"SELECT {column} FROM entries ORDER BY seq")]
    connection.close()
    for seq, value in enumerate(values):
        case = tmp_path / f"row{seq}"
        case.mkdir()
        new_value = ENTRIES + 5 if column == "seq" else changed(value)
        path = tampered_copy(
            pristine, case, (f"UPDATE entries SET {column} = ? WHERE seq = ?", (new_value, seq))
        )
        for memory in (remembered, []):
            report = verify(path, key, memory)
            assert not report.ok, (column, seq)
            assert report.first_bad_entry == seq, (column, seq, report.problems)


@pytest.mark.parametrize(
    ("table", "column"),
    [("tree_nodes", "hash"), ("checkpoints", "root"), ("checkpoints", "signature"),
     ("spent_totals", "units"), ("meta", "value")],
)  # fmt: skip
def test_changing_stored_tree_checkpoints_totals_or_meta_is_detected(
    table: str, column: str, pristine: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    connection = sqlite3.connect(pristine)
    rowids = (
        [row[0] for row in connection.execute(f"SELECT rowid FROM {table}")]
        if table in ("checkpoints",)
        else None
    )
    keys = connection.execute(f"SELECT * FROM {table}").fetchall()
    connection.close()
    for number, row in enumerate(keys):
        case = tmp_path / f"case{number}"
        case.mkdir()
        if table == "tree_nodes":
            where, parameters = "level = ? AND idx = ?", row[:2]
        elif table == "spent_totals":
            where, parameters = "scope = ? AND name = ?", row[:2]
        elif table == "meta":
            if row[0] == "schema_version":
                continue  # informational only
            where, parameters = "key = ?", row[:1]
        else:
            assert rowids is not None
            if row[0] == 0:
                continue  # the empty tree's checkpoint proves nothing about entries
            where, parameters = "size = ?", row[:1]
        reading = sqlite3.connect(pristine)
        current = reading.execute(
            f"SELECT {column} FROM {table} WHERE {where}", parameters
        ).fetchone()[0]
        reading.close()
        path = tampered_copy(
            pristine,
            case,
            (f"UPDATE {table} SET {column} = ? WHERE {where}", (changed(current), *parameters)),
        )
        assert not verify(path, key, []).ok, (table, row)


@pytest.mark.parametrize("seq", [0, 3, ENTRIES - 1])
def test_deleting_a_row_is_detected(
    seq: int, pristine: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    path = tampered_copy(pristine, tmp_path, ("DELETE FROM entries WHERE seq = ?", (seq,)))
    report = verify(path, key, [])
    assert not report.ok
    assert report.first_bad_entry == seq


def truncate(path: Path, size: int) -> None:
    """What a careful attacker does: drop the tail and everything derived from it."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM entries WHERE seq >= ?", (size,))
        connection.execute("DELETE FROM checkpoints WHERE size > ?", (size,))
        connection.execute("DELETE FROM tree_nodes WHERE ((idx + 1) << level) > ?", (size,))
        connection.execute("DELETE FROM spent_totals")
        for scope in ("dataset", "analyst"):
            connection.execute(
                f"INSERT INTO spent_totals SELECT '{scope}', {scope}, SUM(cost_units) "
                f"FROM entries GROUP BY {scope}"
            )
    connection.close()


def test_truncation_is_detected_against_a_remembered_checkpoint(
    pristine: Path, key: Ed25519PrivateKey, remembered: list[SignedCheckpoint], tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(pristine, path)
    truncate(path, 5)
    assert verify(path, key, []).ok  # self-consistent on its own...
    report = verify(path, key, [remembered[-1]])  # ...but not with what the auditor kept
    assert not report.ok
    assert any("entries were removed" in problem for problem in report.problems)


def resign(path: Path, key: Ed25519PrivateKey) -> None:
    """A node that rewrites its own history and re-signs everything with its real key."""
    with LedgerReader.open_existing(path) as reader:
        entries = reader.entries()
    tree = tlog.InMemoryTree()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM tree_nodes")
        connection.execute("DELETE FROM checkpoints WHERE size > 0")
        for entry in entries:
            connection.execute(
                "UPDATE entries SET leaf_hash = ? WHERE seq = ?", (entry.leaf_hash(), entry.seq)
            )
            tree.append(entry.leaf_hash())
            signed = Checkpoint(ORIGIN, tree.size, tree.root()).sign(key)
            connection.execute(
                "INSERT INTO checkpoints VALUES (?, 'now', ?, ?)",
                (tree.size, signed.checkpoint.root, signed.signature),
            )
        for (level, idx), digest in tree._nodes.items():
            connection.execute("INSERT INTO tree_nodes VALUES (?, ?, ?)", (level, idx, digest))
    connection.close()


def test_a_rewritten_and_resigned_ledger_is_detected_against_remembered_checkpoints(
    pristine: Path, key: Ed25519PrivateKey, remembered: list[SignedCheckpoint], tmp_path: Path
) -> None:
    path = tampered_copy(
        pristine, tmp_path, ("UPDATE entries SET answer = ? WHERE seq = 3", (b"a nicer answer",))
    )
    resign(path, key)
    assert verify(path, key, []).ok  # the rewrite is internally perfect...
    report = verify(path, key, remembered)
    assert not report.ok  # ...but contradicts the checkpoints auditors kept
    assert report.first_bad_entry == 3
    only_latest = verify(path, key, [remembered[-1]])
    assert not only_latest.ok
    with LedgerReader.open_existing(path) as reader:
        proof = reader.consistency_proof(4, ENTRIES)
        new_root = reader.root()
    assert not tlog.verify_consistency(4, ENTRIES, remembered[3].checkpoint.root, new_root, proof)


def test_a_checkpoint_signed_by_another_key_is_rejected(
    pristine: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    other = generate_ed25519_key()
    path = tampered_copy(pristine, tmp_path)
    resign(path, other)
    report = verify(path, key, [])
    assert not report.ok
    assert any("signature" in problem or "not signed" in problem for problem in report.problems)
