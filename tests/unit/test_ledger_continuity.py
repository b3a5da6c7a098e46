"""`check_continuity`: the one rule every client applies to a node's checkpoint and the
consistency proof from the size it remembers. Real Merkle trees, real Ed25519 keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.checkpoints import RememberedCheckpoint, check_continuity
from kernel.messages import ConsistencyFromRemembered, PublishedCheckpoint
from privacy import tlog

KEY = Ed25519PrivateKey.generate()
ORIGIN = "demo/a/ledger"


def _tree(leaves: list[bytes]) -> tlog.InMemoryTree:
    return tlog.InMemoryTree([tlog.leaf_hash(leaf) for leaf in leaves])


def _published(tree: tlog.InMemoryTree, key: Ed25519PrivateKey = KEY) -> PublishedCheckpoint:
    signed = tlog.Checkpoint(ORIGIN, tree.size, tree.root()).sign(key)
    return PublishedCheckpoint(signed, tlog.key_fingerprint(key.public_key()))


def _remembered(tree: tlog.InMemoryTree) -> RememberedCheckpoint:
    return RememberedCheckpoint.seen(
        "a", _published(tree), key_fingerprint="f", seen_at="2026-12-01T00:00:00+00:00"
    )


def _proof(tree: tlog.InMemoryTree, old_size: int) -> ConsistencyFromRemembered:
    proof = tree.consistency_proof(old_size, tree.size) if old_size < tree.size else []
    return ConsistencyFromRemembered(old_size, tuple(proof))


HONEST = [f"entry-{n}".encode() for n in range(9)]


def _check(
    remembered: RememberedCheckpoint | None,
    today: tlog.InMemoryTree,
    consistency: ConsistencyFromRemembered | None,
    *,
    key: Ed25519PrivateKey = KEY,
) -> str | None:
    problem = check_continuity(
        "a", remembered, _published(today, key), consistency, KEY.public_key()
    )
    return None if problem is None else problem.kind


@pytest.mark.parametrize("seen", [1, 3, 4, 5, 8])
def test_a_ledger_that_only_grew_passes(seen: int) -> None:
    today = _tree(HONEST)
    assert _check(_remembered(_tree(HONEST[:seen])), today, _proof(today, seen)) is None


def test_the_same_checkpoint_again_passes_with_an_empty_proof() -> None:
    today = _tree(HONEST)
    assert _check(_remembered(today), today, _proof(today, today.size)) is None


def test_nothing_remembered_needs_only_a_valid_signature() -> None:
    today = _tree(HONEST)
    assert _check(None, today, None) is None
    assert _check(None, today, None, key=Ed25519PrivateKey.generate()) == "unsigned"


def test_a_ledger_smaller_than_remembered_shrank() -> None:
    remembered = _remembered(_tree(HONEST))
    assert _check(remembered, _tree(HONEST[:5]), None) == "shrank"
    assert _check(remembered, _tree([]), None) == "shrank"


@pytest.mark.parametrize("seen", [2, 4, 5])
def test_a_fork_grown_past_the_remembered_size_is_caught_by_its_own_proof(seen: int) -> None:
    """The fork shares the first entry, rewrites the rest, and is longer than remembered:
    its checkpoint is validly signed and its proof is a real proof of the forked tree."""
    remembered = _remembered(_tree(HONEST[:seen]))
    fork = _tree([HONEST[0], *(f"forged-{n}".encode() for n in range(seen + 3))])
    assert fork.size > seen
    assert _check(remembered, fork, _proof(fork, seen)) == "forked"


def test_a_proof_from_the_wrong_size_or_none_at_all_is_unproven() -> None:
    today = _tree(HONEST)
    remembered = _remembered(_tree(HONEST[:4]))
    assert _check(remembered, today, None) == "unproven"
    assert _check(remembered, today, _proof(today, 3)) == "unproven"


def test_a_tampered_proof_does_not_verify() -> None:
    today = _tree(HONEST)
    remembered = _remembered(_tree(HONEST[:5]))
    honest = _proof(today, 5)
    broken = ConsistencyFromRemembered(5, (b"\x00" * 32, *honest.proof[1:]))
    assert _check(remembered, today, broken) == "forked"


def test_a_checkpoint_signed_by_another_key_is_refused_before_anything_else() -> None:
    today = _tree(HONEST)
    remembered = _remembered(_tree(HONEST[:4]))
    forged_key = Ed25519PrivateKey.generate()
    assert _check(remembered, today, _proof(today, 4), key=forged_key) == "unsigned"


def test_the_refusal_names_the_node_what_is_wrong_and_what_to_do() -> None:
    problem = check_continuity(
        "a",
        _remembered(_tree(HONEST)),
        _published(_tree(HONEST[:2])),
        None,
        KEY.public_key(),
    )
    assert problem is not None
    message = problem.message()
    assert "node a cannot be trusted" in message
    assert "shrank to 2 entries" in message
    assert "9 entries" in message
    assert "npcs audit --nodes a" in message
