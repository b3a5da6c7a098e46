"""The node's high-water marker file beside its keys, and the start-up rollback refusal.

The marker (see privacy.ledger.high_water) lives in `keys/ledger.high-water`, not in the
ledger's folder, so restoring or deleting that folder does not take the marker with it.
The file's two slots are `node.high_water_slots`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.high_water_slots import HighWaterFile
from privacy.ledger.errors import LedgerFault
from privacy.ledger.high_water import HighWaterMark, high_water_problems
from privacy.ledger.writer import Ledger

log = logging.getLogger(__name__)

__all__ = ["HighWaterFile", "LedgerRolledBack", "refuse_missing_ledger", "refuse_rollback"]

RESET_HINT = (
    "restore the ledger's latest copy; if it is truly lost, start a new ledger on purpose "
    "with `npcs-node ledger reset DIR --i-understand-this-is-recorded` (auditors will see it)"
)


class LedgerRolledBack(LedgerFault):
    """The ledger is missing, shorter than a checkpoint this node signed, or forked."""


def refuse_missing_ledger(store: HighWaterFile, ledger_db: Path) -> None:
    """Before a ledger file is created: refuse if the marker says one existed."""
    marker = store.load()
    if marker is not None and marker.mark.size > 0 and not ledger_db.exists():
        raise LedgerRolledBack(
            f"the ledger {ledger_db} is missing, but this node has signed a checkpoint of "
            f"size {marker.mark.size} (recorded in {store.path}); refusing to start with a "
            f"fresh, full budget: {RESET_HINT}"
        )


def refuse_rollback(store: HighWaterFile, ledger: Ledger, key: Ed25519PrivateKey) -> None:
    """Refuse a ledger shorter than, or forked from, the marker; start a marker for a
    ledger that has none yet (a node upgraded from a release without markers)."""
    problems = high_water_problems(store, ledger, ledger.public_key)
    if problems:
        raise LedgerRolledBack(f"{problems[0]}; refusing to start: {RESET_HINT}")
    if store.load() is None and ledger.size() > 0:
        signed = ledger.latest_checkpoint()
        store.save(HighWaterMark.of(signed).sign(key))
        log.warning(
            "no high-water marker yet; started one at the ledger's size",
            extra={"event": "high_water_started", "size": signed.checkpoint.size},
        )
