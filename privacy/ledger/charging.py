"""What one charge records, decided outside the write transaction's SQL: the entry built
from a charge request and its (unrevealed) release, and the checks on a reused query_id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from privacy.ledger.entry import ChargeRequest, LedgerEntry
from privacy.ledger.errors import QueryIdConflict


def now() -> str:
    """UTC time, ISO 8601 with microseconds (entries' and checkpoints' `time`)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_entry(
    charge: ChargeRequest,
    *,
    seq: int,
    delta: str,
    answer: bytes,
    epsilon: str,
    failure: BaseException | None,
) -> LedgerEntry:
    """The ledger row for `charge` at position `seq`: `failed` (empty answer) if the
    release raised."""
    return LedgerEntry(
        seq=seq,
        time=now(),
        query_id=charge.query_id,
        analyst=charge.analyst,
        dataset=charge.dataset,
        statistic=charge.statistic,
        signed_request=charge.signed_request,
        canonical_query=charge.canonical_query,
        query_hash=charge.query_hash,
        purpose=charge.purpose,
        mechanism_summary=charge.mechanism_summary,
        cost_units=charge.cost_units,
        epsilon=epsilon,
        delta=delta,
        opendp_version=charge.opendp_version,
        snapshot_id=charge.snapshot_id,
        status="released" if failure is None else "failed",
        answer=answer,
    )


def require_same_body(charge: ChargeRequest, existing: LedgerEntry) -> None:
    if not charge.same_body_as(existing):
        raise QueryIdConflict(
            f"query_id {charge.query_id!r} was already used for a different query; "
            "send a new query_id for a new query"
        )


def run_release(release: Callable[[], bytes]) -> tuple[bytes, Exception | None]:
    """Run the release; an exception still counts as spent (noise may have been drawn)."""
    try:
        answer = release()
    except Exception as exc:
        return b"", exc
    if not isinstance(answer, bytes):
        return b"", TypeError(f"release returned {type(answer).__name__}, not bytes")
    return answer, None
