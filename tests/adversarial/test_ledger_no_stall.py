"""Issue 11, defect 4: one charge's release must not stall readers or other writers.

The release (OpenDP in the node) runs before the write transaction, unrevealed, and
outside every lock. Ordering is asserted with events, never with timing thresholds; the
measured durations are printed for the record (`pytest -s`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from support_ledger import charge_request

from kernel.keyfiles import generate_ed25519_key
from privacy.ledger.entry import ChargeOutcome, ChargeRequest
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetExceeded, BudgetPolicy

ORIGIN = "npcs/test/node-a/ledger"
WAIT = 60.0
"""Only a guard against a hung test; no assertion depends on how long anything takes."""


def _request(query_id: str, cost: int = 100_000) -> ChargeRequest:
    return charge_request(
        query_id,
        f'{{"dataset":"incidents","id":"{query_id}"}}'.encode(),
        analyst="alice",
        dataset="incidents",
        statistic="count",
        purpose="stall test",
        cost_units=cost,
        mechanism_summary="[]",
        snapshot_id="snap-1",
        signed_request=b"signature-bytes",
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    policy = BudgetPolicy.from_rho({"child": "0.25"}, "0.25", {})
    opened = Ledger.open(
        tmp_path / "ledger.sqlite", origin=ORIGIN, signing_key=generate_ed25519_key(), policy=policy
    )
    yield opened
    opened.close()


class BlockedRelease:
    """A release that signals when it runs and returns only when allowed to."""

    def __init__(self, answer: bytes) -> None:
        self.started = threading.Event()
        self.proceed = threading.Event()
        self._answer = answer

    def __call__(self) -> bytes:
        self.started.set()
        assert self.proceed.wait(WAIT), "the test never let the release finish"
        return self._answer


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def _start_blocked_charge(
    pool: ThreadPoolExecutor, ledger: Ledger, query_id: str
) -> tuple[BlockedRelease, Future[ChargeOutcome]]:
    release = BlockedRelease(b"answer-" + query_id.encode())
    future = pool.submit(ledger.charge_and_release, _request(query_id), release)
    assert release.started.wait(WAIT)
    return release, future


def test_checkpoint_reads_and_other_charges_finish_while_a_release_runs(ledger: Ledger) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        unblocked = _timed(ledger.snapshot_reader.latest_checkpoint)
        release, slow = _start_blocked_charge(pool, ledger, "slow")
        # The slow release is running: an auditor's read and another analyst's charge
        # both complete before it is allowed to finish.
        snapshot_read = _timed(ledger.snapshot_reader.latest_checkpoint)
        writer_read = _timed(ledger.latest_checkpoint)
        other = ledger.charge_and_release(_request("quick"), lambda: b"answer-quick")
        assert not release.proceed.is_set()
        assert not slow.done()
        release.proceed.set()
        outcome = slow.result(WAIT)
    print(  # the measured figures, for the before/after
        f"GetCheckpoint idle {unblocked * 1e3:.2f} ms; during a release: snapshot reader "
        f"{snapshot_read * 1e3:.2f} ms, writer's connection {writer_read * 1e3:.2f} ms"
    )
    assert other.receipt.entry_index == 0
    assert outcome.receipt.entry_index == 1
    assert ledger.size() == 2


def test_a_budget_refused_in_the_transaction_discards_the_unrevealed_release(
    ledger: Ledger,
) -> None:
    """Two charges pass the early budget check; the one that commits first takes the last
    budget; the other's already computed answer is discarded, never recorded or returned."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        release, late = _start_blocked_charge(pool, ledger, "late")
        ledger.charge_and_release(_request("first", cost=200_000), lambda: b"answer-first")
        release.proceed.set()
        with pytest.raises(BudgetExceeded):
            late.result(WAIT)
    assert [entry.query_id for entry in ledger.entries()] == ["first"]
    assert ledger.spent_units("incidents") == 200_000
    assert ledger.entry_by_query_id("late") is None
