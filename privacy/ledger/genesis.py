"""The genesis entry of a ledger started anew on purpose (`npcs-node ledger reset`).

It is entry 0 of the new ledger, costs nothing, and names the last checkpoint the node
knew of the lost or abandoned ledger (origin, size, root, signature), so every auditor
who downloads the new ledger sees that, and from where, its history restarted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy.ledger.entry import ChargeRequest, LedgerEntry
from privacy.tlog import Checkpoint, SignedCheckpoint

GENESIS_STATISTIC = "ledger-reset"
GENESIS_DATASET = "ledger-reset"
GENESIS_ANALYST = "node-operator"


@dataclass(frozen=True)
class LedgerReset:
    """What a genesis entry records about the ledger it replaces."""

    previous: SignedCheckpoint
    archived_as: str

    def to_json(self, public_key: Ed25519PublicKey) -> bytes:
        """The recorded document; `public_key` (the ledger key) names the signer in the
        checkpoint's signed-note text."""
        checkpoint = self.previous.checkpoint
        document = {
            "kind": GENESIS_STATISTIC,
            "previous_checkpoint": {
                "origin": checkpoint.origin,
                "size": checkpoint.size,
                "root": base64.b64encode(checkpoint.root).decode("ascii"),
                "signature": base64.b64encode(self.previous.signature).decode("ascii"),
                "text": self.previous.to_text(public_key),
            },
            "archived_as": self.archived_as,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def charge(self, public_key: Ed25519PublicKey) -> ChargeRequest:
        """The zero-cost charge that records this reset as entry 0 of the new ledger."""
        body = self.to_json(public_key)
        return ChargeRequest(
            query_id=f"ledger-reset-{uuid.uuid4()}",
            analyst=GENESIS_ANALYST,
            dataset=GENESIS_DATASET,
            statistic=GENESIS_STATISTIC,
            canonical_query=body,
            query_hash=hashlib.sha256(body).hexdigest(),
            purpose="a new ledger started on purpose (npcs-node ledger reset)",
            cost_units=0,
            mechanism_summary="{}",
            opendp_version="none",
            snapshot_id="none",
            signed_request=None,
        )


class GenesisFormatError(ValueError):
    """An entry that claims to be a genesis entry but cannot be read as one."""


def is_genesis(entry: LedgerEntry) -> bool:
    return entry.statistic == GENESIS_STATISTIC and entry.dataset == GENESIS_DATASET


def read_reset(entry: LedgerEntry) -> LedgerReset:
    """The reset recorded by a genesis entry; GenesisFormatError if it is malformed."""
    try:
        document = json.loads(entry.canonical_query)
        previous = document["previous_checkpoint"]
        checkpoint = Checkpoint(
            str(previous["origin"]),
            int(previous["size"]),
            base64.b64decode(previous["root"], validate=True),
        )
        signature = base64.b64decode(previous["signature"], validate=True)
        return LedgerReset(SignedCheckpoint(checkpoint, signature), str(document["archived_as"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise GenesisFormatError(f"the genesis entry cannot be read: {exc}") from exc
