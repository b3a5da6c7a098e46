"""Shared test builder for ledger charges.

Also used by scripts that run outside pytest (bench/bench_ledger.py and
tests/crash/ledger_worker.py): they append tests/ to sys.path to import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from privacy.ledger.charging import new_entry
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy


def charge_request(
    query_id: str,
    query: bytes,
    *,
    analyst: str = "alice",
    dataset: str = "incidents",
    statistic: str = "count",
    cost_units: int = 100_000,
    purpose: str = "test",
    mechanism_summary: str = "{}",
    snapshot_id: str = "snap",
    signed_request: bytes | None = None,
) -> ChargeRequest:
    """A charge for the canonical query bytes `query`, with their hash filled in."""
    return ChargeRequest(
        query_id=query_id,
        analyst=analyst,
        dataset=dataset,
        statistic=statistic,
        canonical_query=query,
        query_hash=hashlib.sha256(query).hexdigest(),
        purpose=purpose,
        cost_units=cost_units,
        mechanism_summary=mechanism_summary,
        opendp_version="0.16.0",
        snapshot_id=snapshot_id,
        signed_request=signed_request,
    )


def filled_ledger(
    path: Path, entries: int, origin: str, key: Ed25519PrivateKey, policy: BudgetPolicy
) -> Ledger:
    """A ledger of `entries` charges, appended in one transaction (fast to build)."""
    ledger = Ledger.open(path, origin=origin, signing_key=key, policy=policy)
    with ledger._write_transaction():
        for number in range(entries):
            request = charge_request(f"q{number}", f'{{"n":{number}}}'.encode())
            ledger._append(
                new_entry(request, seq=number, delta="1e-9", answer=b"a", epsilon="1", failure=None)
            )
    return ledger
