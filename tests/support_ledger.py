"""Shared test builder for ledger charges.

Also used by scripts that run outside pytest (bench/bench_ledger.py and
tests/crash/ledger_worker.py): they append tests/ to sys.path to import it.
"""

from __future__ import annotations

import hashlib

from privacy.ledger.entry import ChargeRequest


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
