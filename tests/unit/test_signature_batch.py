"""Checkpoint signatures verified in batches on a real process pool (`ledger verify`)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from kernel.keyfiles import generate_ed25519_key
from privacy import tlog
from privacy.ledger.signature_batch import BATCH_SIZE, SignatureChecks

ORIGIN = "npcs/p/node-a/ledger"


@pytest.mark.parametrize("pooled", [False, True])
def test_every_bad_signature_is_found_in_and_between_batches(pooled: bool) -> None:
    key = generate_ed25519_key()
    count = 2 * BATCH_SIZE + 7
    bad = {3, BATCH_SIZE + 1, count}
    pool = (
        ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) if pooled else None
    )
    try:
        checks = SignatureChecks(key.public_key(), ORIGIN, pool)
        for size in range(1, count + 1):
            root = tlog.leaf_hash(str(size).encode())
            signed = tlog.Checkpoint(ORIGIN, size, root).sign(key)
            signature = signed.signature
            if size in bad:  # all zeros, or too short to be a signature
                signature = b"short" if size == 3 else bytes(64)
            checks.add(size, root, signature)
        assert checks.bad_sizes() == sorted(bad)
        assert checks.checked == count
    finally:
        if pool is not None:
            pool.shutdown()
