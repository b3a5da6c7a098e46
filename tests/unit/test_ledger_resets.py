"""Accepting a recorded ledger reset: the genesis entry must name exactly the remembered
checkpoint, signed by the pinned key; replacing the memory is one transaction that only
the named nodes get."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.audit.archive_checks import lifetime_warnings
from coordinator.audit.report import DatasetSpending
from coordinator.checkpoints import CheckpointStore, RememberedCheckpoint
from coordinator.ledger_resets import genesis_mismatch
from privacy import tlog
from privacy.budget import rho_to_units_ceil

ORIGIN = "npcs/demo/county-a/ledger"
ROOT = bytes(range(32))


def remembered(key: Ed25519PrivateKey, size: int = 4, root: bytes = ROOT) -> RememberedCheckpoint:
    signed = tlog.Checkpoint(ORIGIN, size, root).sign(key)
    return RememberedCheckpoint(
        "county-a",
        ORIGIN,
        size,
        root,
        signed.signature,
        tlog.key_fingerprint(key.public_key()),
        "t",
    )


def test_a_genesis_naming_the_remembered_checkpoint_signed_by_the_pinned_key_is_accepted() -> None:
    key = Ed25519PrivateKey.generate()
    memory = remembered(key)
    assert genesis_mismatch(memory, memory.signed, key.public_key()) is None


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [("another/ledger", 4, ROOT), (ORIGIN, 5, ROOT), (ORIGIN, 4, bytes(32))],
)
def test_a_genesis_naming_another_checkpoint_is_refused(
    origin: str, size: int, root: bytes
) -> None:
    key = Ed25519PrivateKey.generate()
    named = tlog.Checkpoint(origin, size, root).sign(key)
    mismatch = genesis_mismatch(remembered(key), named, key.public_key())
    assert mismatch is not None
    assert f"names a checkpoint of {size} entries" in mismatch
    assert "not the remembered checkpoint of 4 entries" in mismatch


def test_a_genesis_naming_the_remembered_checkpoint_with_a_forged_signature_is_refused() -> None:
    key, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = remembered(forger).signed
    mismatch = genesis_mismatch(remembered(key), forged, key.public_key())
    assert mismatch is not None
    assert "does not verify with the node's pinned ledger key" in mismatch


def test_replacing_a_nodes_memory_accepts_a_smaller_ledger_for_that_node_only(
    tmp_path: Path,
) -> None:
    store = CheckpointStore(tmp_path / "memory.sqlite")
    key = Ed25519PrivateKey.generate()
    old = [remembered(key, 4), RememberedCheckpoint("county-b", "b", 6, ROOT, b"s", "f", "t")]
    assert store.remember("demo", old) == []
    new_a = remembered(key, 1, bytes(32))
    new_b = RememberedCheckpoint("county-b", "b", 2, ROOT, b"s", "f", "t")
    regressions = store.remember("demo", [new_a, new_b], replacing=["county-a"])
    assert [(r.node, r.regression) for r in regressions] == [("county-b", "shrank")]
    assert store.remembered("demo") == {"county-a": new_a, "county-b": old[1]}


def _spent(dataset: str, rho: str, total: str | None) -> DatasetSpending:
    units = rho_to_units_ceil(rho)
    return DatasetSpending(
        dataset=dataset, spent_units=units, spent_rho=rho, total_rho=total, charges=1
    )


def test_spending_before_and_after_a_reset_together_over_a_total_is_a_warning() -> None:
    before = [_spent("incidents", "6", "10"), _spent("placements", "1", "10")]
    after = [_spent("incidents", "5", "10"), _spent("placements", "1", "10")]
    (warning,) = lifetime_warnings(before, after)
    assert warning.startswith("dataset 'incidents' spent rho 11 before and after the reset")
    assert "more than its policy total 10" in warning
    assert lifetime_warnings(before, [_spent("incidents", "4", "10")]) == []
