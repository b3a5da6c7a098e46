"""Starting a new ledger on purpose (`npcs-node ledger reset`): archive, genesis, marker.

The old ledger file is moved (never deleted) to `ledger/archive/`; the new ledger's
entry 0 is a genesis entry naming the last checkpoint this node knew (the high-water
marker's, else the old ledger's latest), so auditors see the restart; the marker is then
replaced by the new ledger's first checkpoint. Run with the node stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kernel.files import fsync_directory
from kernel.keyfiles import load_ed25519_private_key
from node.high_water import HighWaterFile
from node.layout import NodePaths
from node.node_ledger import ledger_origin
from node.permissions import create_private_file, make_private_dir
from node.serve_lock import exclusive_serve_lock
from node.settings import load_settings
from privacy.ledger.errors import LedgerFault
from privacy.ledger.genesis import GENESIS_DATASET, LedgerReset
from privacy.ledger.high_water import HighWaterMark
from privacy.ledger.reader import LedgerReader
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy
from privacy.tlog import Checkpoint, SignedCheckpoint

SQLITE_SUFFIXES = ("", "-wal", "-shm")


@dataclass(frozen=True)
class ResetOutcome:
    previous: SignedCheckpoint
    archived_as: Path | None
    new_checkpoint: SignedCheckpoint


def reset_ledger(root: Path) -> ResetOutcome:
    """Archive the current ledger and start a new one whose genesis names the last
    known checkpoint. Refuses while the node is serving (NodeAlreadyServingError), and
    when there is no checkpoint to name (LedgerFault: then there is nothing to reset)."""
    paths = NodePaths(root)
    settings = load_settings(root)
    key = load_ed25519_private_key(paths.ledger_key, "ledger key")
    store = HighWaterFile(paths.ledger_high_water)
    with exclusive_serve_lock(root):
        previous = _last_known_checkpoint(store, paths, key.public_key())
        archived = _archive(paths)
        reset = LedgerReset(previous, archived.name if archived else "")
        create_private_file(paths.ledger_db)
        # The genesis entry is its own zero budget: it is about nobody and costs nothing.
        genesis_only = BudgetPolicy(
            {GENESIS_DATASET: 0}, 0, unit_kind_of_dataset={GENESIS_DATASET: GENESIS_DATASET}
        )
        with Ledger.open(
            paths.ledger_db,
            origin=ledger_origin(settings),
            signing_key=key,
            policy=genesis_only,
            delta=settings.budget.delta,
        ) as ledger:
            if ledger.size() != 0:
                raise LedgerFault(f"{paths.ledger_db} is not empty after archiving; not reset")
            body = reset.to_json(ledger.public_key)
            receipt = ledger.charge_and_release(
                reset.charge(ledger.public_key), lambda: body
            ).receipt
        store.save(HighWaterMark.of(receipt.checkpoint).sign(key))
    return ResetOutcome(previous, archived, receipt.checkpoint)


def _last_known_checkpoint(
    store: HighWaterFile, paths: NodePaths, public_key: Ed25519PublicKey
) -> SignedCheckpoint:
    marker = store.load()
    if marker is not None:
        if not marker.verifies(public_key):
            raise LedgerFault(
                f"{store.path} is not signed by this node's ledger key; refusing to reset "
                "from it: ask the partnership's auditors for the last checkpoint they hold"
            )
        mark = marker.mark
        return SignedCheckpoint(
            Checkpoint(mark.origin, mark.size, mark.root), mark.checkpoint_signature
        )
    if paths.ledger_db.exists():
        with LedgerReader.open_existing(paths.ledger_db) as reader:
            return reader.latest_checkpoint()
    raise LedgerFault(
        f"there is no ledger and no high-water marker in {paths.root}: nothing to reset "
        "(`npcs-node serve` starts a new ledger by itself)"
    )


def _archive(paths: NodePaths) -> Path | None:
    """Move the ledger's files to ledger/archive/ledger-<UTC time>.sqlite (kept, never
    deleted); None if there was no ledger file."""
    if not paths.ledger_db.exists():
        return None
    archive_dir = paths.ledger_dir / "archive"
    make_private_dir(archive_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = archive_dir / f"ledger-{stamp}.sqlite"
    for suffix in SQLITE_SUFFIXES:
        source = paths.ledger_db.with_name(paths.ledger_db.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    fsync_directory(archive_dir)
    fsync_directory(paths.ledger_dir)
    return target
