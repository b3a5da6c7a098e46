"""The ledger on the wire: signed checkpoints, query answers with their receipts, entries.

Parsing raises `WireError(field, message)` naming the field that is wrong; an entry
whose structured fields disagree with its `leaf_data` is refused.
"""

from __future__ import annotations

from pydantic import ValidationError

from kernel.messages import ConsistencyFromRemembered, PublishedCheckpoint, QueryAnswer
from npcs.errors import WireError
from npcs.v1 import node_pb2 as pb
from privacy.ledger.entry import LedgerEntry, Receipt
from privacy.tlog import Checkpoint, SignedCheckpoint, leaf_hash

# ---------------------------------------------------------------------------------
# Checkpoints


def checkpoint_to_proto(signed: SignedCheckpoint, key_fingerprint: str) -> pb.SignedCheckpoint:
    return pb.SignedCheckpoint(
        origin=signed.checkpoint.origin,
        size=signed.checkpoint.size,
        root=signed.checkpoint.root,
        signature=signed.signature,
        key_fingerprint=key_fingerprint,
    )


def checkpoint_from_proto(
    message: pb.SignedCheckpoint, *, path: str = "checkpoint"
) -> PublishedCheckpoint:
    try:
        checkpoint = Checkpoint(origin=message.origin, size=message.size, root=message.root)
    except ValueError as exc:
        raise WireError(path, str(exc)) from exc
    return PublishedCheckpoint(
        signed=SignedCheckpoint(checkpoint, message.signature),
        key_fingerprint=message.key_fingerprint,
    )


def consistency_from_proto(
    message: pb.ConsistencyFromRemembered | None,
) -> ConsistencyFromRemembered | None:
    """None for an unset field (the node gave no proof)."""
    if message is None:
        return None
    return ConsistencyFromRemembered(old_size=message.old_size, proof=tuple(message.proof))


# ---------------------------------------------------------------------------------
# Query answers and their receipts


def query_response_to_proto(
    release_bytes: bytes, receipt: Receipt, key_fingerprint: str
) -> pb.QueryResponse:
    return pb.QueryResponse(
        release_json=release_bytes,
        receipt=pb.Receipt(
            entry_index=receipt.entry_index,
            tree_size=receipt.tree_size,
            inclusion_proof=list(receipt.inclusion_proof),
            checkpoint=checkpoint_to_proto(receipt.checkpoint, key_fingerprint),
            replayed=receipt.replayed,
            leaf_data=receipt.leaf_data,
        ),
    )


def query_response_from_proto(message: pb.QueryResponse) -> QueryAnswer:
    receipt = message.receipt
    answer = QueryAnswer(
        release_bytes=message.release_json,
        entry_index=receipt.entry_index,
        tree_size=receipt.tree_size,
        inclusion_proof=tuple(receipt.inclusion_proof),
        checkpoint=checkpoint_from_proto(receipt.checkpoint, path="receipt.checkpoint"),
        replayed=receipt.replayed,
        leaf_data=receipt.leaf_data,
        consistency=consistency_from_proto(
            receipt.consistency if receipt.HasField("consistency") else None
        ),
    )
    try:
        answer.release()  # parsed once here, kept by the answer
    except ValidationError as exc:
        raise WireError("release_json", "the node's release is not a valid Release") from exc
    return answer


# ---------------------------------------------------------------------------------
# Ledger entries (auditors)


def ledger_entry_to_proto(entry: LedgerEntry) -> pb.LedgerEntry:
    leaf_data = entry.canonical_bytes()
    return pb.LedgerEntry(
        seq=entry.seq,
        time=entry.time,
        query_id=entry.query_id,
        analyst=entry.analyst,
        dataset=entry.dataset,
        statistic=entry.statistic,
        signed_request=entry.signed_request or b"",
        has_signed_request=entry.signed_request is not None,
        canonical_query=entry.canonical_query,
        query_hash=entry.query_hash,
        purpose=entry.purpose,
        mechanism_summary=entry.mechanism_summary,
        cost_units=entry.cost_units,
        epsilon=entry.epsilon,
        delta=entry.delta,
        opendp_version=entry.opendp_version,
        snapshot_id=entry.snapshot_id,
        status=entry.status,
        answer=entry.answer,
        leaf_data=leaf_data,
        leaf_hash=leaf_hash(leaf_data),
    )


def ledger_entry_from_proto(message: pb.LedgerEntry, *, path: str = "entries") -> LedgerEntry:
    """The entry from its structured fields; WireError if they disagree with `leaf_data`."""
    entry = LedgerEntry(
        seq=message.seq,
        time=message.time,
        query_id=message.query_id,
        analyst=message.analyst,
        dataset=message.dataset,
        statistic=message.statistic,
        signed_request=message.signed_request if message.has_signed_request else None,
        canonical_query=message.canonical_query,
        query_hash=message.query_hash,
        purpose=message.purpose,
        mechanism_summary=message.mechanism_summary,
        cost_units=message.cost_units,
        epsilon=message.epsilon,
        delta=message.delta,
        opendp_version=message.opendp_version,
        snapshot_id=message.snapshot_id,
        status=message.status,
        answer=message.answer,
    )
    if entry.canonical_bytes() != message.leaf_data:
        raise WireError(f"{path}[{message.seq}].leaf_data", "does not match the entry's fields")
    if leaf_hash(message.leaf_data) != message.leaf_hash:
        raise WireError(f"{path}[{message.seq}].leaf_hash", "is not the hash of leaf_data")
    return entry
