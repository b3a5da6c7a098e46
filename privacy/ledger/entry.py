"""The ledger's value types and the entry's canonical form.

`ChargeRequest` is what the engine asks the ledger to record; `LedgerEntry` is one stored
charge, whose canonical JSON (sorted keys, compact, bytes as base64) is the Merkle leaf
data; `Receipt` goes back to the client with every answer and verifies on its own, so the
coordinator parses receipts with this module alone (no SQLite, no OpenDP).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy import tlog
from privacy.tlog import SignedCheckpoint

EntryStatus = Literal["released", "failed"]


@dataclass(frozen=True)
class ChargeRequest:
    """Everything the ledger records about one query, apart from the answer."""

    query_id: str
    analyst: str
    dataset: str
    statistic: str
    canonical_query: bytes
    query_hash: str
    """Hex SHA-256 of canonical_query."""
    purpose: str
    cost_units: int
    """Micro-rho, already rounded up from OpenDP's privacy map."""
    mechanism_summary: str
    """JSON text: distribution and scale per released value."""
    opendp_version: str
    snapshot_id: str
    signed_request: bytes | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first malformed field."""
        for name in ("query_id", "analyst", "dataset", "statistic", "purpose"):
            if not getattr(self, name).strip():
                raise ValueError(f"charge field {name!r} must not be empty")
        if hashlib.sha256(self.canonical_query).hexdigest() != self.query_hash:
            raise ValueError("charge field 'query_hash' is not the SHA-256 of canonical_query")
        if not isinstance(self.cost_units, int) or self.cost_units < 0:
            raise ValueError("charge field 'cost_units' must be a non-negative integer")
        try:
            json.loads(self.mechanism_summary)
        except json.JSONDecodeError as exc:
            raise ValueError("charge field 'mechanism_summary' must be JSON text") from exc

    def same_body_as(self, entry: LedgerEntry) -> bool:
        """A retry of an entry: same analyst, dataset, statistic, query and purpose."""
        return (
            self.analyst == entry.analyst
            and self.dataset == entry.dataset
            and self.statistic == entry.statistic
            and self.canonical_query == entry.canonical_query
            and self.query_hash == entry.query_hash
            and self.purpose == entry.purpose
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One stored charge (a leaf of the Merkle tree)."""

    seq: int
    time: str
    query_id: str
    analyst: str
    dataset: str
    statistic: str
    signed_request: bytes | None
    canonical_query: bytes
    query_hash: str
    purpose: str
    mechanism_summary: str
    cost_units: int
    epsilon: str
    delta: str
    opendp_version: str
    snapshot_id: str
    status: str
    answer: bytes

    def canonical_bytes(self) -> bytes:
        """Sorted-key compact JSON of every field, bytes as base64: the leaf data."""
        # Not dataclasses.asdict: it deep-copies every field and dominated the audit time.
        return canonical_json({name: getattr(self, name) for name in ENTRY_COLUMNS})

    def leaf_hash(self) -> bytes:
        return tlog.leaf_hash(self.canonical_bytes())

    def to_json_dict(self) -> dict[str, Any]:
        return json.loads(self.canonical_bytes())  # type: ignore[no-any-return]


ENTRY_COLUMNS = (
    "seq",
    "time",
    "query_id",
    "analyst",
    "dataset",
    "statistic",
    "signed_request",
    "canonical_query",
    "query_hash",
    "purpose",
    "mechanism_summary",
    "cost_units",
    "epsilon",
    "delta",
    "opendp_version",
    "snapshot_id",
    "status",
    "answer",
)
"""The entry's fields in table order: the columns of `entries` before `leaf_hash`."""

assert tuple(item.name for item in fields(LedgerEntry)) == ENTRY_COLUMNS


def spent_total_keys(entry: LedgerEntry) -> tuple[tuple[str, str], ...]:
    """The running totals, as (scope, name), that an entry's cost is added to: the one
    rule the writer, the self-check and the verified-through mark share."""
    return spent_total_keys_for(entry.dataset, entry.analyst)


def spent_total_keys_for(dataset: str, analyst: str) -> tuple[tuple[str, str], ...]:
    """`spent_total_keys` of an entry of `dataset` charged by `analyst`."""
    return (("dataset", dataset), ("analyst", analyst))


def canonical_json(fields: dict[str, Any]) -> bytes:
    """Sorted-key compact ASCII JSON, bytes values as base64 strings."""
    return _CANONICAL.encode(fields).encode()


def _base64_text(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not a ledger field type")


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_base64_text
)
"""One encoder (the C one): it calls `default` only for the few bytes values."""


def entry_from_canonical_bytes(data: bytes) -> LedgerEntry:
    """Parse the leaf data (e.g. from a receipt) back into an entry."""
    raw = json.loads(data)
    for name in ("canonical_query", "answer"):
        raw[name] = base64.b64decode(raw[name])
    if raw["signed_request"] is not None:
        raw["signed_request"] = base64.b64decode(raw["signed_request"])
    entry = LedgerEntry(**raw)
    if entry.canonical_bytes() != data:
        raise ValueError("leaf data is not in canonical form")
    return entry


@dataclass(frozen=True)
class Receipt:
    """What goes back to the client with every answer."""

    entry_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint
    replayed: bool
    leaf_data: bytes = b""
    """The entry's canonical bytes, so the client can check what was recorded."""

    def verify(self, public_key: Ed25519PublicKey, answer: bytes) -> bool:
        """The checkpoint is signed by `public_key`, and the recorded entry holds `answer`
        and is included in that checkpoint's tree."""
        return self.verified_entry(public_key, answer) is not None

    def verified_entry(
        self, public_key: Ed25519PublicKey, answer: bytes, *, signature_checked: bool = False
    ) -> LedgerEntry | None:
        """The recorded entry if the receipt verifies (as `verify`), else None.

        `signature_checked`: the caller has just verified this very checkpoint (same
        body, signature and key hash) under `public_key`, so it is not verified twice."""
        if not signature_checked and not self.checkpoint.verify(public_key):
            return None
        if self.checkpoint.checkpoint.size != self.tree_size:
            return None
        try:
            entry = entry_from_canonical_bytes(self.leaf_data)
        except (ValueError, TypeError, KeyError):
            return None
        if entry.answer != answer or entry.seq != self.entry_index:
            return None
        included = tlog.verify_inclusion(
            tlog.leaf_hash(self.leaf_data),
            self.entry_index,
            self.tree_size,
            self.inclusion_proof,
            self.checkpoint.checkpoint.root,
        )
        return entry if included else None


@dataclass(frozen=True)
class ChargeOutcome:
    answer: bytes
    receipt: Receipt
