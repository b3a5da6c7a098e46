"""Transparency-log primitives: an RFC 6962 / RFC 9162 Merkle tree and signed checkpoints.

The node's ledger rows are the leaves. Anyone holding the node's Ed25519 ledger public
key can check a signed checkpoint (origin, size, root), that an entry is in the tree
(inclusion proof) and that a later tree extends an earlier one (consistency proof).

Keys are passed in: generating, storing and loading them is `kernel.keyfiles`' job.
Pure and cheap to import: hashlib and `cryptography` only (the coordinator verifies
receipts with this module and must never import OpenDP or Polars).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privacy import signed_note

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) of RFC 6962: the hash of the empty string."""

RangeHash = Callable[[int, int], bytes]
"""Returns MTH(D[start:end]) for a range that is a complete, aligned subtree."""


class CheckpointFormatError(ValueError):
    """A checkpoint text that does not follow the checkpoint format."""


# --- hashing -------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two k with k < n (n >= 2), the split point of RFC 6962."""
    if n < 2:
        raise ValueError(f"a split needs at least 2 leaves, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def is_aligned_subtree(start: int, end: int) -> bool:
    """True when D[start:end] is a complete subtree: a power-of-two size at a multiple of it."""
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def subtree_root(start: int, end: int, complete_subtree: RangeHash) -> bytes:
    """MTH(D[start:end]), asking `complete_subtree` only for complete aligned subtrees."""
    if end <= start:
        return EMPTY_ROOT
    if is_aligned_subtree(start, end):
        return complete_subtree(start, end)
    split = start + largest_power_of_two_below(end - start)
    return node_hash(
        subtree_root(start, split, complete_subtree), subtree_root(split, end, complete_subtree)
    )


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes (for tests and small trees)."""
    frontier = MerkleFrontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


class MerkleFrontier:
    """The right edge of a growing tree: O(log n) memory, O(log n) work per append.

    `append` returns the complete subtrees it finished, as (level, index, hash) with
    level 0 being the leaf itself, so a caller can store every interior node.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
        self.size = 0

    @classmethod
    def of_complete_subtrees(cls, size: int, complete_subtree: RangeHash) -> MerkleFrontier:
        """The frontier of the first `size` leaves, from its right-edge complete subtrees
        (one per set bit of `size`, largest first): O(log n) lookups, no leaf read."""
        frontier = cls()
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                frontier._stack.append((level, complete_subtree(start, start + (1 << level))))
                start += 1 << level
        frontier.size = size
        return frontier

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        finished = [(0, index, leaf)]
        level, current = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            current = node_hash(left, current)
            level += 1
            finished.append((level, index >> level, current))
        self._stack.append((level, current))
        self.size += 1
        return finished

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        accumulated = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            accumulated = node_hash(left, accumulated)
        return accumulated


class InMemoryTree:
    """A Merkle tree over a list of leaf hashes, for tests and verification tools."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._frontier = MerkleFrontier()
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf: bytes) -> None:
        for level, index, digest in self._frontier.append(leaf):
            self._nodes[(level, index)] = digest

    def complete_subtree(self, start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        return self._nodes[(level, start >> level)]

    def root(self, size: int | None = None) -> bytes:
        return subtree_root(0, self.size if size is None else size, self.complete_subtree)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self.complete_subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(old_size, new_size, self.complete_subtree)


# --- proofs (RFC 9162 section 2.1.3 and 2.1.4) ---------------------------------------


def inclusion_proof(index: int, size: int, complete_subtree: RangeHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"entry {index} is not in a tree of size {size}")
    return _path(index, 0, size, complete_subtree)


def _path(index: int, start: int, end: int, complete_subtree: RangeHash) -> list[bytes]:
    if end - start <= 1:
        return []
    split = start + largest_power_of_two_below(end - start)
    if index < split:
        return [
            *_path(index, start, split, complete_subtree),
            subtree_root(split, end, complete_subtree),
        ]
    return [
        *_path(index, split, end, complete_subtree),
        subtree_root(start, split, complete_subtree),
    ]


def consistency_proof(old_size: int, new_size: int, complete_subtree: RangeHash) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        return []
    return _subproof(old_size, 0, new_size, True, complete_subtree)


def _subproof(
    m: int, start: int, end: int, complete_old_root: bool, complete_subtree: RangeHash
) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete_old_root else [subtree_root(start, end, complete_subtree)]
    split = largest_power_of_two_below(n)
    if m <= split:
        return [
            *_subproof(m, start, start + split, complete_old_root, complete_subtree),
            subtree_root(start + split, end, complete_subtree),
        ]
    return [
        *_subproof(m - split, start + split, end, False, complete_subtree),
        subtree_root(start, start + split, complete_subtree),
    ]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does `proof` show leaf hash `leaf` at `index` under `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    current = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and current == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: does `proof` show the new tree extends the old one?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # a complete old tree is its own first node
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(sibling, fr)
            sr = node_hash(sibling, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, sibling)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of an Ed25519 public key (`public_bytes_raw`: no import of
    cryptography's `serialization`, ~8 ms of every `npcs query`)."""
    return key.public_bytes_raw()


def key_fingerprint(key: Ed25519PublicKey | bytes) -> str:
    """SHA-256 (hex) of the raw 32-byte public key (given as a key or its raw bytes): the
    project's one Ed25519 key fingerprint, naming ledger keys and request-signing keys."""
    raw = key if isinstance(key, bytes) else raw_public_key(key)
    return hashlib.sha256(raw).hexdigest()


# --- checkpoints ---------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The state of a log: its origin (name), size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("a checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise ValueError(f"a checkpoint size cannot be negative, got {self.size}")
        if len(self.root) != HASH_SIZE:
            raise ValueError(f"a checkpoint root is {HASH_SIZE} bytes, got {len(self.root)}")
        if any(not line or "\n" in line for line in self.extensions):
            raise ValueError("a checkpoint extension is one non-empty line")

    def to_text(self) -> str:
        """Body (C2SP tlog-checkpoint): origin, decimal size, base64 root, extension lines."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise CheckpointFormatError(
                "a checkpoint body is origin, size and root lines (then extension lines), "
                "each ending in a newline"
            )
        origin, size_text, root_text, *extensions = lines[:-1]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise CheckpointFormatError(f"checkpoint size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as exc:
            raise CheckpointFormatError("checkpoint root is not base64") from exc
        try:
            return cls(origin, int(size_text), root, tuple(extensions))
        except ValueError as exc:
            raise CheckpointFormatError(str(exc)) from exc

    def sign(self, key: Ed25519PrivateKey) -> SignedCheckpoint:
        key_hash = signed_note.ed25519_key_hash(self.origin, raw_public_key(key.public_key()))
        return SignedCheckpoint(self, key.sign(self.to_text().encode()), key_hash)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with the log's Ed25519 signature over its body: a C2SP signed note.

    The key name is the origin. `key_hash` is the signed-note key hash the signature line
    carries; None when it is not known (a stored row read without the key, or a note in
    the pre-C2SP format whose line held the bare 64-byte signature).
    """

    checkpoint: Checkpoint
    signature: bytes
    key_hash: bytes | None = field(default=None, compare=False)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Signature valid under `public_key`, and the line's key hash (if any) names it."""
        expected = signed_note.ed25519_key_hash(self.checkpoint.origin, raw_public_key(public_key))
        if self.key_hash is not None and self.key_hash != expected:
            return False
        try:
            public_key.verify(self.signature, self.checkpoint.to_text().encode())
        except InvalidSignature:
            return False
        return True

    def to_text(self, public_key: Ed25519PublicKey | None = None) -> str:
        """The C2SP note '<body>\n— ORIGIN base64(key hash || signature)\n' (key hash
        from `public_key` when given, else from `key_hash`)."""
        origin = self.checkpoint.origin
        if public_key is not None:
            key_hash = signed_note.ed25519_key_hash(origin, raw_public_key(public_key))
        elif self.key_hash is not None:
            key_hash = self.key_hash
        else:
            raise ValueError("writing a signed note needs the signer's public key (key hash)")
        line = signed_note.NoteSignature(origin, key_hash + self.signature)
        return signed_note.format_note(self.checkpoint.to_text(), [line])

    @classmethod
    def from_text(cls, text: str) -> SignedCheckpoint:
        """Read a note: the first line named after the origin is the log's, other keys'
        lines are ignored; a bare 64-byte signature is the pre-C2SP format, still read."""
        try:
            body, lines = signed_note.parse_note(text)
        except signed_note.NoteFormatError as exc:
            raise CheckpointFormatError(str(exc)) from exc
        checkpoint = Checkpoint.from_text(body)
        for line in lines:
            if line.name != checkpoint.origin:
                continue
            if len(line.payload) == signed_note.ED25519_SIGNATURE_SIZE:
                return cls(checkpoint, line.payload, None)
            if len(line.payload) == signed_note.KEY_HASH_SIZE + signed_note.ED25519_SIGNATURE_SIZE:
                hash_size = signed_note.KEY_HASH_SIZE
                return cls(checkpoint, line.payload[hash_size:], line.payload[:hash_size])
            raise CheckpointFormatError(
                f"the signature line of {checkpoint.origin!r} is not an Ed25519 signature"
            )
        raise CheckpointFormatError(
            f"no signature line names the checkpoint origin {checkpoint.origin!r}"
        )
