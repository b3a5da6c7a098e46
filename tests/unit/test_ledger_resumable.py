"""The ledger's self-check in two parts (issue 12, deliver 2; issue 11, defect 3):

- the start-up check reads O(log n) rows: the last checkpoint, the last entry, the
  right-edge tree nodes and the signed verified-through mark;
- the background pass re-verifies every entry, tree node, checkpoint root and checkpoint
  signature once, from the mark, and moves the mark on.

Real SQLite ledgers, real Ed25519 signatures; tampering by SQL as an operator could.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from support_ledger import charge_request, filled_ledger

from kernel.keyfiles import generate_ed25519_key
from privacy.ledger.verified_mark import load_mark
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy

ORIGIN = "npcs/test/node-a/ledger"
POLICY = BudgetPolicy({"child": 10**9}, 10**6)


def _charge(ledger: Ledger, number: int) -> None:
    ledger.charge_and_release(
        charge_request(f"q{number}", f'{{"n":{number}}}'.encode(), cost_units=100 + number),
        functools.partial(bytes, f"answer {number}".encode()),
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    opened = Ledger.open(
        tmp_path / "ledger.sqlite", origin=ORIGIN, signing_key=generate_ed25519_key(), policy=POLICY
    )
    for number in range(12):
        _charge(opened, number)
    return opened


def _sql(ledger: Ledger, statement: str, parameters: tuple[object, ...] = ()) -> None:
    with sqlite3.connect(ledger.path) as connection:
        connection.execute(statement, parameters)
    connection.close()


def _mark_size(ledger: Ledger) -> int:
    with sqlite3.connect(ledger.path) as connection:
        mark = load_mark(connection, ORIGIN, ledger.public_key)
    connection.close()
    return mark.size


def test_the_pass_verifies_to_the_end_and_records_a_signed_mark(ledger: Ledger) -> None:
    assert _mark_size(ledger) == 0
    report = ledger.self_check()
    assert report.ok, report.problems
    assert (report.size, report.root) == (12, ledger.root())
    assert _mark_size(ledger) == 12
    _charge(ledger, 12)
    assert ledger.continue_verification().ok
    assert _mark_size(ledger) == 13


def test_a_forged_intermediate_checkpoint_signature_fails_the_self_check(ledger: Ledger) -> None:
    # Only the last checkpoint's signature was checked before: this passed.
    _sql(ledger, "UPDATE checkpoints SET signature = ? WHERE size = 5", (b"\x01" * 64,))
    assert ledger.startup_check().ok  # the start-up check reads the last checkpoint only
    report = ledger.continue_verification()
    assert not report.ok
    assert "the checkpoint at size 5 has a bad signature" in report.problems
    assert _mark_size(ledger) == 0  # the mark does not pass a problem
    assert not ledger.self_check().ok


def test_the_pass_resumes_from_the_mark_hashing_each_entry_once(ledger: Ledger) -> None:
    assert ledger.self_check().ok
    # An entry before the mark, changed now, is not hashed again by the pass (only by
    # `ledger verify`): the pass starts at the mark.
    _sql(ledger, "UPDATE entries SET purpose = 'changed' WHERE seq = 3")
    for number in range(12, 15):
        _charge(ledger, number)
    assert ledger.continue_verification().ok
    assert _mark_size(ledger) == 15
    full = ledger.verify(ledger.public_key)
    assert not full.ok
    assert full.first_bad_entry == 3


def test_a_changed_entry_after_the_mark_fails_the_pass(ledger: Ledger) -> None:
    assert ledger.self_check().ok
    for number in range(12, 15):
        _charge(ledger, number)
    _sql(ledger, "UPDATE entries SET cost_units = 1 WHERE seq = 13")
    report = ledger.continue_verification()
    assert not report.ok
    assert report.first_bad_entry == 13
    assert _mark_size(ledger) == 12


def test_the_start_up_check_finds_a_changed_last_entry(ledger: Ledger) -> None:
    _sql(ledger, "UPDATE entries SET answer = X'00' WHERE seq = 11")
    report = ledger.startup_check()
    assert not report.ok
    assert report.first_bad_entry == 11


def test_the_start_up_check_finds_a_changed_right_edge_tree_node(ledger: Ledger) -> None:
    # 12 entries: the root is built from the nodes (3, 0) and (2, 2).
    _sql(ledger, "UPDATE tree_nodes SET hash = ? WHERE level = 2 AND idx = 2", (b"\x07" * 32,))
    report = ledger.startup_check()
    assert not report.ok
    assert any("root differs from the last signed checkpoint" in p for p in report.problems)


def test_the_start_up_check_finds_totals_lowered_below_the_verified_sums(ledger: Ledger) -> None:
    assert ledger.self_check().ok
    _sql(ledger, "UPDATE spent_totals SET units = 0 WHERE scope = 'dataset'")
    report = ledger.startup_check()
    assert not report.ok
    assert any("below the" in problem for problem in report.problems), report.problems


def test_totals_raised_or_lowered_after_the_mark_fail_the_pass(ledger: Ledger) -> None:
    assert ledger.self_check().ok
    _sql(ledger, "UPDATE spent_totals SET units = units + 1 WHERE scope = 'analyst'")
    assert ledger.startup_check().ok  # totals only grow: a raise is found by the pass
    report = ledger.continue_verification()
    assert not report.ok
    assert any("spent total for analyst" in problem for problem in report.problems)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE verified_mark SET size = 20",
        "UPDATE verified_mark SET totals = '[]'",
        "UPDATE verified_mark SET signature = zeroblob(64)",
    ],
)
def test_a_mark_changed_without_the_key_fails_the_start_up_check(
    ledger: Ledger, statement: str
) -> None:
    assert ledger.self_check().ok
    _sql(ledger, statement)
    report = ledger.startup_check()
    assert not report.ok
    assert any("verified-through mark" in problem for problem in report.problems)


def test_a_ledger_truncated_below_the_mark_fails_the_start_up_check(ledger: Ledger) -> None:
    assert ledger.self_check().ok
    _sql(ledger, "DELETE FROM entries WHERE seq >= 10")
    _sql(ledger, "DELETE FROM checkpoints WHERE size > 10")
    report = ledger.startup_check()
    assert not report.ok
    assert any("were verified before" in problem for problem in report.problems)


def test_a_ledger_from_before_the_mark_is_migrated_and_verifies(tmp_path: Path) -> None:
    key = generate_ed25519_key()
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY) as old:
        for number in range(6):
            _charge(old, number)
    # The file as the release before the mark wrote it: no verified_mark table.
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE verified_mark")
    connection.close()
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY) as upgraded:
        assert upgraded.startup_check().ok
        assert upgraded.verify(upgraded.public_key).ok
        assert upgraded.self_check().ok
        assert _mark_size(upgraded) == 6
        _charge(upgraded, 6)
        assert upgraded.self_check().ok
        assert _mark_size(upgraded) == 7


def _filled(path: Path, entries: int) -> Ledger:
    return filled_ledger(path, entries, ORIGIN, generate_ed25519_key(), POLICY)


def _sqlite_steps(ledger: Ledger, action: Callable[[], object]) -> int:
    """SQLite virtual-machine steps `action` runs on the ledger's own connection."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    ledger._conn.set_progress_handler(count, 1)
    try:
        action()
    finally:
        ledger._conn.set_progress_handler(None, 1)
    return steps[0]


def test_the_start_up_check_does_not_grow_with_the_ledger(tmp_path: Path) -> None:
    # Same number of right-edge subtrees (two set bits), 32 times the entries.
    small = _filled(tmp_path / "small.sqlite", 96)
    large = _filled(tmp_path / "large.sqlite", 3072)
    try:
        small_steps = _sqlite_steps(small, small.startup_check)
        large_steps = _sqlite_steps(large, large.startup_check)
        assert small.startup_check().ok
        assert large.startup_check().ok
        assert large_steps < 2 * small_steps, (small_steps, large_steps)
        # The full check, for contrast, grows with the entries.
        full_small = _sqlite_steps(small, lambda: small.verify(small.public_key))
        full_large = _sqlite_steps(large, lambda: large.verify(large.public_key))
        assert full_large > 10 * full_small
    finally:
        small.close()
        large.close()
