"""The privacy-budget ledger: charge before release, replay, refusals, totals, proofs."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support_ledger import charge_request

from kernel.keyfiles import generate_ed25519_key
from privacy import tlog
from privacy.budget import rho_to_units_ceil
from privacy.epsilon import epsilon_for_rho_units
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.errors import LedgerFault, QueryIdConflict, ReleaseFailed
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetExceeded, BudgetPolicy

ORIGIN = "npcs/test/node-a/ledger"


def request(
    query_id: str,
    *,
    cost: int = 100_000,
    analyst: str = "alice",
    dataset: str = "incidents",
    body: str = "count",
    snapshot: str = "snap-1",
) -> ChargeRequest:
    return charge_request(
        query_id,
        f'{{"dataset":"{dataset}","statistic":"{body}"}}'.encode(),
        analyst=analyst,
        dataset=dataset,
        statistic=body,
        purpose="annual report",
        cost_units=cost,
        mechanism_summary='{"count":{"distribution":"gaussian","scale":3.2}}',
        snapshot_id=snapshot,
        signed_request=b"signature-bytes",
    )


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_ed25519_key()


@pytest.fixture
def policy() -> BudgetPolicy:
    return BudgetPolicy.from_rho({"child": "1"}, "0.5", {"bob": "0.3"})


@pytest.fixture
def ledger(tmp_path: Path, key: Ed25519PrivateKey, policy: BudgetPolicy) -> Iterator[Ledger]:
    opened = Ledger.open(tmp_path / "ledger.sqlite", origin=ORIGIN, signing_key=key, policy=policy)
    yield opened
    opened.close()


def test_charge_returns_the_answer_with_a_verifiable_receipt(
    ledger: Ledger, key: Ed25519PrivateKey
) -> None:
    outcome = ledger.charge_and_release(request("q1"), lambda: b"answer-1")
    assert outcome.answer == b"answer-1"
    receipt = outcome.receipt
    assert (receipt.entry_index, receipt.tree_size, receipt.replayed) == (0, 1, False)
    assert receipt.verify(key.public_key(), b"answer-1")
    assert not receipt.verify(key.public_key(), b"another answer")
    assert receipt.checkpoint == ledger.latest_checkpoint()


def test_row_records_every_field_of_the_charge(ledger: Ledger) -> None:
    charge = request("q1")
    ledger.charge_and_release(charge, lambda: b"answer-1")
    (entry,) = ledger.entries(0, 1)
    assert entry.seq == 0
    assert entry.query_id == "q1"
    assert entry.analyst == "alice"
    assert entry.signed_request == b"signature-bytes"
    assert entry.canonical_query == charge.canonical_query
    assert entry.query_hash == charge.query_hash
    assert entry.purpose == "annual report"
    assert entry.mechanism_summary == charge.mechanism_summary
    assert entry.cost_units == 100_000
    assert entry.delta == "1e-9"
    assert float(entry.epsilon) > 0
    assert entry.opendp_version == "0.16.0"
    assert entry.snapshot_id == "snap-1"
    assert entry.status == "released"
    assert entry.answer == b"answer-1"


def test_retry_with_same_body_returns_identical_answer_without_charging(ledger: Ledger) -> None:
    first = ledger.charge_and_release(request("q1"), lambda: b"answer-1")
    calls: list[int] = []

    def must_not_run() -> bytes:
        calls.append(1)
        return b"fresh noise"

    again = ledger.charge_and_release(request("q1"), must_not_run)
    assert again.answer == first.answer
    assert again.receipt.replayed
    assert calls == []
    assert ledger.size() == 1
    assert ledger.spent_units("incidents") == 100_000


def test_replay_only_request_never_charges_when_its_entry_is_missing(ledger: Ledger) -> None:
    """A request admitted as a retry (freshness unchecked) may only fetch a stored answer."""
    ledger.charge_and_release(request("q1"), lambda: b"answer-1")
    replayed = ledger.charge_and_release(request("q1"), lambda: b"x", replay_only=True)
    assert replayed.receipt.replayed
    with pytest.raises(LedgerFault, match="entry is gone"):
        ledger.charge_and_release(request("q2"), lambda: b"answer-2", replay_only=True)
    assert ledger.size() == 1
    assert ledger.spent_units("incidents") == 100_000


def test_retry_after_reopen_returns_identical_answer_and_adds_no_row(
    tmp_path: Path, key: Ed25519PrivateKey, policy: BudgetPolicy
) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=policy) as first:
        original = first.charge_and_release(request("q1"), lambda: b"answer-1")
        first.charge_and_release(request("q2"), lambda: b"answer-2")
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=policy) as reopened:
        replay = reopened.charge_and_release(request("q1"), lambda: b"fresh noise")
        assert replay.answer == original.answer
        assert replay.receipt.replayed
        assert replay.receipt.tree_size == 2
        assert replay.receipt.verify(key.public_key(), b"answer-1")
        assert reopened.size() == 2
        assert reopened.spent_units("incidents") == 200_000


def test_same_query_id_with_a_different_body_is_refused(ledger: Ledger) -> None:
    ledger.charge_and_release(request("q1"), lambda: b"answer-1")
    with pytest.raises(QueryIdConflict, match="'q1' was already used"):
        ledger.charge_and_release(request("q1", body="sum"), lambda: b"x")
    with pytest.raises(QueryIdConflict):
        ledger.charge_and_release(request("q1", analyst="bob"), lambda: b"x")
    assert ledger.size() == 1


def test_refusal_when_the_unit_kind_budget_is_spent_charges_nothing(ledger: Ledger) -> None:
    for number in range(2):
        ledger.charge_and_release(request(f"q{number}", cost=500_000), lambda: b"a")
    assert ledger.remaining_units("incidents") == 0
    with pytest.raises(BudgetExceeded) as refused:
        ledger.charge_and_release(request("q-over", cost=1), lambda: b"never")
    assert refused.value.scope == "unit_kind"
    assert (refused.value.requested_units, refused.value.remaining_units) == (1, 0)
    assert "incidents" in str(refused.value)
    assert ledger.size() == 2
    assert ledger.entry_by_query_id("q-over") is None


def test_refusal_over_the_per_query_maximum(ledger: Ledger) -> None:
    with pytest.raises(BudgetExceeded) as refused:
        ledger.charge_and_release(request("big", cost=500_001), lambda: b"never")
    assert refused.value.scope == "per_query"
    assert ledger.size() == 0


def test_analyst_cap_spans_datasets(ledger: Ledger) -> None:
    ledger.charge_and_release(request("b1", analyst="bob", cost=200_000), lambda: b"a")
    assert ledger.remaining_units("reports", "bob") == 100_000
    with pytest.raises(BudgetExceeded) as refused:
        ledger.charge_and_release(
            request("b2", analyst="bob", dataset="reports", cost=200_000), lambda: b"a"
        )
    assert refused.value.scope == "analyst"
    assert refused.value.remaining_units == 100_000
    ledger.charge_and_release(
        request("a1", analyst="alice", dataset="reports", cost=200_000), bytes
    )
    assert ledger.spent_units(analyst="bob") == 200_000


def test_dataset_without_a_budget_is_refused_with_advice(ledger: Ledger) -> None:
    with pytest.raises(BudgetExceeded, match="no privacy budget for dataset 'workforce'"):
        ledger.charge_and_release(request("w", dataset="workforce", cost=1), lambda: b"a")


def test_release_failure_counts_as_spent_and_is_not_released_on_retry(ledger: Ledger) -> None:
    def broken() -> bytes:
        raise RuntimeError("engine crashed after drawing noise")

    with pytest.raises(ReleaseFailed, match="charged") as failed:
        ledger.charge_and_release(request("q1"), broken)
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert ledger.spent_units("incidents") == 100_000
    assert ledger.entries()[0].status == "failed"
    with pytest.raises(ReleaseFailed):
        ledger.charge_and_release(request("q1"), lambda: b"second try")
    assert ledger.size() == 1
    assert ledger.self_check().ok


def test_refreshing_the_data_never_resets_the_budget(
    tmp_path: Path, key: Ed25519PrivateKey, policy: BudgetPolicy
) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=policy) as ledger:
        ledger.charge_and_release(request("q1", cost=400_000, snapshot="snap-1"), bytes)
        ledger.charge_and_release(request("q2", cost=400_000, snapshot="snap-2"), bytes)
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=policy) as ledger:
        assert ledger.remaining_units("incidents") == 200_000
        with pytest.raises(BudgetExceeded):
            ledger.charge_and_release(request("q3", cost=400_000, snapshot="snap-3"), bytes)


def test_epsilon_equivalent_comes_from_opendp_and_respects_the_classic_bound() -> None:
    rho = 0.5
    epsilon = float(epsilon_for_rho_units(rho_to_units_ceil(rho), "1e-9"))
    classic_bound = rho + 2 * math.sqrt(rho * math.log(1 / 1e-9))  # Bun & Steinke 2016
    assert 0 < epsilon <= classic_bound
    assert epsilon_for_rho_units(0, "1e-9") == "0"


def test_opening_with_another_key_or_origin_is_refused(
    tmp_path: Path, key: Ed25519PrivateKey, policy: BudgetPolicy
) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger.open(path, origin=ORIGIN, signing_key=key, policy=policy).close()
    with pytest.raises(LedgerFault, match="ledger key"):
        Ledger.open(path, origin=ORIGIN, signing_key=generate_ed25519_key(), policy=policy)
    with pytest.raises(LedgerFault, match="origin"):
        Ledger.open(path, origin="npcs/other/ledger", signing_key=key, policy=policy)


def test_database_is_wal_with_full_synchronous(ledger: Ledger) -> None:
    connection = sqlite3.connect(ledger.path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()
    assert ledger._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_malformed_charge_is_refused_before_anything_happens(ledger: Ledger) -> None:
    good = request("q1")
    bad = ChargeRequest(**{**good.__dict__, "query_hash": "00" * 32})
    with pytest.raises(ValueError, match="query_hash"):
        ledger.charge_and_release(bad, lambda: b"a")
    assert ledger.size() == 0


def test_proofs_from_the_ledger_verify_for_every_size_and_index(
    ledger: Ledger, key: Ed25519PrivateKey
) -> None:
    ledger.policy = BudgetPolicy({"child": 10**9}, 10**6)
    roots: dict[int, bytes] = {}
    for number in range(64):
        outcome = ledger.charge_and_release(request(f"q{number}", cost=1), lambda: b"a")
        roots[number + 1] = outcome.receipt.checkpoint.checkpoint.root
    leaves = [entry.leaf_hash() for entry in ledger.entries()]
    for size in range(1, 65):
        assert ledger.root(size) == roots[size] == tlog.root_from_leaf_hashes(leaves[:size])
        for index in range(size):
            proof = ledger.inclusion_proof(index, size)
            assert tlog.verify_inclusion(leaves[index], index, size, proof, roots[size])
        for old_size in range(1, size + 1):
            proof = ledger.consistency_proof(old_size, size)
            assert tlog.verify_consistency(old_size, size, roots[old_size], roots[size], proof)
    assert ledger.latest_checkpoint().verify(key.public_key())
    assert ledger.self_check().ok


def test_self_check_of_a_fresh_ledger_passes(ledger: Ledger) -> None:
    report = ledger.self_check()
    assert report.ok, report.problems
    assert report.size == 0
    assert ledger.latest_checkpoint().checkpoint.size == 0


def test_self_check_finds_totals_that_disagree_with_the_charges(ledger: Ledger) -> None:
    ledger.charge_and_release(request("q1"), lambda: b"a")
    ledger._conn.execute("UPDATE spent_totals SET units = 0 WHERE scope = 'dataset'")
    report = ledger.self_check()
    assert not report.ok
    assert any("spent total for dataset 'incidents'" in p for p in report.problems)
    with pytest.raises(LedgerFault, match="self-check"):
        ledger.require_sound()


def test_importing_the_ledger_loads_neither_opendp_nor_polars() -> None:
    """The coordinator parses receipts with privacy.ledger: it must stay OpenDP-free."""
    import subprocess
    import sys

    modules = ", ".join(
        f"privacy.ledger.{name}"
        for name in ("entry", "errors", "reader", "sqlschema", "verifier", "writer")
    )
    code = (
        f"import sys, privacy.epsilon, {modules}; "
        "print(any(m.split('.')[0] in ('opendp', 'polars') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
