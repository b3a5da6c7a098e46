"""RFC 6962 Merkle tree, proofs, checkpoints and the signer's key id (privacy/tlog.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from kernel.keyfiles import generate_ed25519_key
from privacy import tlog
from privacy.tlog import Checkpoint, CheckpointFormatError, InMemoryTree, SignedCheckpoint

# The leaves of the certificate-transparency reference tests (RFC 6962 test vectors).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
MAX_SIZE = 64


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1, recursively, as an independent reference."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:])).digest()


@pytest.fixture(scope="module")
def tree() -> InMemoryTree:
    leaves = [f"leaf {i}".encode() for i in range(MAX_SIZE)]
    return InMemoryTree([tlog.leaf_hash(leaf) for leaf in leaves])


def test_roots_match_the_certificate_transparency_test_vectors() -> None:
    tree = InMemoryTree([tlog.leaf_hash(leaf) for leaf in CT_LEAVES])
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert tree.root(size).hex() == expected


def test_empty_tree_root_is_hash_of_empty_string() -> None:
    assert tlog.root_from_leaf_hashes([]) == hashlib.sha256(b"").digest()


def test_roots_match_the_recursive_definition_for_every_size(tree: InMemoryTree) -> None:
    leaves = [f"leaf {i}".encode() for i in range(MAX_SIZE)]
    for size in range(MAX_SIZE + 1):
        assert tree.root(size) == naive_root(leaves[:size])
        assert tlog.root_from_leaf_hashes([tlog.leaf_hash(x) for x in leaves[:size]]) == tree.root(
            size
        )


def test_inclusion_proofs_verify_for_every_size_and_index(tree: InMemoryTree) -> None:
    for size in range(1, MAX_SIZE + 1):
        root = tree.root(size)
        for index in range(size):
            leaf = tlog.leaf_hash(f"leaf {index}".encode())
            proof = tree.inclusion_proof(index, size)
            assert tlog.verify_inclusion(leaf, index, size, proof, root)
            assert not tlog.verify_inclusion(leaf, index, size, proof, tree.root(size - 1))
            if size > 1:
                wrong_index = (index + 1) % size
                assert not tlog.verify_inclusion(leaf, wrong_index, size, proof, root)


def test_inclusion_proof_rejects_altered_or_extended_paths(tree: InMemoryTree) -> None:
    size, index = 37, 20
    root = tree.root(size)
    leaf = tlog.leaf_hash(f"leaf {index}".encode())
    proof = tree.inclusion_proof(index, size)
    for position in range(len(proof)):
        altered = list(proof)
        altered[position] = bytes(32)
        assert not tlog.verify_inclusion(leaf, index, size, altered, root)
    assert not tlog.verify_inclusion(leaf, index, size, [*proof, bytes(32)], root)
    assert not tlog.verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not tlog.verify_inclusion(leaf, size, size, proof, root)


def test_consistency_proofs_verify_for_every_pair_of_sizes(tree: InMemoryTree) -> None:
    for new_size in range(1, MAX_SIZE + 1):
        new_root = tree.root(new_size)
        for old_size in range(1, new_size + 1):
            old_root = tree.root(old_size)
            proof = tree.consistency_proof(old_size, new_size)
            assert tlog.verify_consistency(old_size, new_size, old_root, new_root, proof)
            if old_size < new_size:
                forged = hashlib.sha256(b"forged").digest()
                assert not tlog.verify_consistency(old_size, new_size, forged, new_root, proof)
                assert not tlog.verify_consistency(old_size, new_size, old_root, forged, proof)
                assert not tlog.verify_consistency(old_size, new_size, old_root, new_root, [])


def test_consistency_proof_of_a_forked_tree_fails(tree: InMemoryTree) -> None:
    forked = InMemoryTree(
        [tlog.leaf_hash(f"leaf {i}".encode() if i != 5 else b"rewritten") for i in range(40)]
    )
    proof = forked.consistency_proof(20, 40)
    assert not tlog.verify_consistency(20, 40, tree.root(20), forked.root(40), proof)


def test_checkpoint_text_round_trips_and_signature_verifies() -> None:
    key = generate_ed25519_key()
    checkpoint = Checkpoint("npcs/p/node-a/ledger", 12, hashlib.sha256(b"x").digest())
    assert Checkpoint.from_text(checkpoint.to_text()) == checkpoint
    assert checkpoint.to_text().splitlines()[1] == "12"
    signed = checkpoint.sign(key)
    assert signed.verify(key.public_key())
    assert SignedCheckpoint.from_text(signed.to_text()) == signed
    assert not signed.verify(generate_ed25519_key().public_key())


def test_a_changed_checkpoint_field_breaks_its_signature() -> None:
    key = generate_ed25519_key()
    signed = Checkpoint("origin", 5, bytes(32)).sign(key)
    for changed in (
        Checkpoint("origin2", 5, bytes(32)),
        Checkpoint("origin", 6, bytes(32)),
        Checkpoint("origin", 5, b"\x01" * 32),
    ):
        assert not SignedCheckpoint(changed, signed.signature).verify(key.public_key())


@pytest.mark.parametrize(
    "text",
    ["origin\n5\n", "origin\n05\nAAAA\n", "origin\nfive\n" + "A" * 44 + "\n", "o\n1\n!!!!\n"],
)
def test_malformed_checkpoint_text_is_refused(text: str) -> None:
    with pytest.raises(CheckpointFormatError):
        Checkpoint.from_text(text)


def test_signed_checkpoint_without_signature_line_is_refused() -> None:
    body = Checkpoint("origin", 1, bytes(32)).to_text()
    with pytest.raises(CheckpointFormatError):
        SignedCheckpoint.from_text(body)


def test_fingerprint_is_sha256_of_the_raw_public_key() -> None:
    public = generate_ed25519_key().public_key()
    assert tlog.key_fingerprint(public) == hashlib.sha256(tlog.raw_public_key(public)).hexdigest()


def test_importing_tlog_loads_neither_opendp_nor_polars() -> None:
    code = (
        "import sys, privacy.tlog; "
        "print(any(m.split('.')[0] in ('opendp', 'polars') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
