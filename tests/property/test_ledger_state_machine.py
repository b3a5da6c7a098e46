"""Random charges, refusals, retries, failures and restarts never break the budget."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from support_ledger import charge_request

from kernel.keyfiles import generate_ed25519_key
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.errors import QueryIdConflict, ReleaseFailed
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetExceeded, BudgetPolicy

ORIGIN = "npcs/test/node-a/ledger"
CHILD_TOTAL = 1_000_000
"""One budget for a child, shared by incidents and reports; staff has none."""
CHILD_DATASETS = ("incidents", "reports")
MAX_PER_QUERY = 400_000
CAPS = {"carol": 500_000}
DATASETS = [*CHILD_DATASETS, "workforce"]  # workforce (staff) has no budget: always refused
ANALYSTS = ["alice", "bob", "carol"]


def make_request(query_id: str, dataset: str, analyst: str, cost: int, body: str) -> ChargeRequest:
    return charge_request(
        query_id,
        f'{{"dataset":"{dataset}","body":"{body}"}}'.encode(),
        analyst=analyst,
        dataset=dataset,
        statistic=body,
        purpose="property test",
        cost_units=cost,
    )


class LedgerMachine(RuleBasedStateMachine):
    """The model: which query ids were charged, for what, with which answer."""

    released = Bundle("released")

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="ledger-sm-"))
        self.key = generate_ed25519_key()
        self.policy = BudgetPolicy({"child": CHILD_TOTAL}, MAX_PER_QUERY, CAPS)
        self.ledger = self._open()
        self.charges: dict[str, ChargeRequest] = {}
        self.answers: dict[str, bytes] = {}
        self.counter = 0

    def _open(self) -> Ledger:
        return Ledger.open(
            self.directory / "ledger.sqlite",
            origin=ORIGIN,
            signing_key=self.key,
            policy=self.policy,
        )

    def _spent(self, *, dataset: str | None = None, analyst: str | None = None) -> int:
        return sum(
            charge.cost_units
            for charge in self.charges.values()
            if dataset in (None, charge.dataset) and analyst in (None, charge.analyst)
        )

    def _child_spent(self) -> int:
        return sum(self._spent(dataset=dataset) for dataset in CHILD_DATASETS)

    def _fits(self, dataset: str, analyst: str, cost: int) -> bool:
        if cost > MAX_PER_QUERY or dataset not in CHILD_DATASETS:
            return False
        if cost > CHILD_TOTAL - self._child_spent():
            return False
        return analyst not in CAPS or cost <= CAPS[analyst] - self._spent(analyst=analyst)

    def _next_id(self) -> str:
        self.counter += 1
        return f"q{self.counter}"

    @rule(
        target=released,
        dataset=st.sampled_from(DATASETS),
        analyst=st.sampled_from(ANALYSTS),
        cost=st.integers(0, 450_000),
    )
    def charge(self, dataset: str, analyst: str, cost: int) -> str:
        query_id = self._next_id()
        request = make_request(query_id, dataset, analyst, cost, "count")
        fits = self._fits(dataset, analyst, cost)
        answer = f"answer {query_id}".encode()
        try:
            outcome = self.ledger.charge_and_release(request, lambda: answer)
        except BudgetExceeded:
            assert not fits
            return "refused"
        assert fits
        assert outcome.answer == answer
        self.charges[query_id] = request
        self.answers[query_id] = answer
        return query_id

    @rule(dataset=st.sampled_from(DATASETS), cost=st.integers(0, 450_000))
    def failing_release(self, dataset: str, cost: int) -> None:
        query_id = self._next_id()
        request = make_request(query_id, dataset, "alice", cost, "sum")
        fits = self._fits(dataset, "alice", cost)

        def crash() -> bytes:
            raise RuntimeError("mechanism failed")

        with pytest.raises(ReleaseFailed if fits else BudgetExceeded):
            self.ledger.charge_and_release(request, crash)
        if fits:
            self.charges[query_id] = request  # a failure after the release is spent

    @rule(query_id=released)
    def retry(self, query_id: str) -> None:
        if query_id == "refused":
            return
        again = self.ledger.charge_and_release(self.charges[query_id], lambda: b"fresh noise")
        assert again.answer == self.answers[query_id]
        assert again.receipt.replayed

    @rule(query_id=released)
    def retry_with_another_body(self, query_id: str) -> None:
        if query_id == "refused":
            return
        original = self.charges[query_id]
        other = make_request(query_id, original.dataset, original.analyst, 1, "median")
        with pytest.raises(QueryIdConflict):
            self.ledger.charge_and_release(other, lambda: b"x")

    @rule(query_id=consumes(released))
    def restart(self, query_id: str) -> None:
        self.ledger.close()
        self.ledger = self._open()
        assert self.ledger.self_check().ok

    @invariant()
    def spent_never_exceeds_total_and_equals_the_charges(self) -> None:
        child_spent = sum(self.ledger.spent_units(dataset) for dataset in CHILD_DATASETS)
        assert child_spent <= CHILD_TOTAL
        assert child_spent == self._child_spent()
        for dataset in CHILD_DATASETS:
            assert self.ledger.spent_units(dataset) == self._spent(dataset=dataset)
            assert self.ledger.remaining_units(dataset) == CHILD_TOTAL - child_spent
        for analyst in ANALYSTS:
            assert self.ledger.spent_units(analyst=analyst) == self._spent(analyst=analyst)
        entries = self.ledger.entries()
        assert len(entries) == len(self.charges)
        assert sum(entry.cost_units for entry in entries) == self._spent()

    def teardown(self) -> None:
        try:
            report = self.ledger.self_check()
            assert report.ok, report.problems
        finally:
            self.ledger.close()
            shutil.rmtree(self.directory, ignore_errors=True)


LedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLedgerStateMachine = LedgerMachine.TestCase
