"""The high-water mark: the largest checkpoint a node has ever signed, signed again.

A consistent prefix of a ledger (tables truncated by SQL, an older copy restored, the
file deleted) verifies on its own. The node therefore keeps, outside the ledger's folder,
a small marker naming the largest (size, root) it ever signed, signed with the ledger
key, and raises it as each new checkpoint is committed (a few milliseconds behind:
`privacy.ledger.high_water_trail`). At start-up the ledger must be at
least that long and have that root at that size, or the node refuses to serve.

This module is pure: the text format, signing and the comparison with a ledger. Where
the marker lives and how it is written durably is the node's business
(`HighWaterStore`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privacy.ledger.errors import LedgerFault
from privacy.ledger.reader import LedgerReader
from privacy.ledger.verifier import SelfCheckReport
from privacy.tlog import SignedCheckpoint

HEADER = "npcs ledger high-water mark v1"
"""First line of the marker text; also separates its signatures from checkpoints'."""


class HighWaterFormatError(ValueError):
    """The marker text is not a well-formed high-water mark."""


@dataclass(frozen=True)
class HighWaterMark:
    """The largest checkpoint (origin, size, root, and the checkpoint's own signature)
    this node has ever signed."""

    origin: str
    size: int
    root: bytes
    checkpoint_signature: bytes

    @classmethod
    def of(cls, signed: SignedCheckpoint) -> HighWaterMark:
        checkpoint = signed.checkpoint
        return cls(checkpoint.origin, checkpoint.size, checkpoint.root, signed.signature)

    def body(self) -> bytes:
        """The signed text: header, origin, size, base64 root and base64 checkpoint
        signature, one per line."""
        root = base64.b64encode(self.root).decode("ascii")
        signature = base64.b64encode(self.checkpoint_signature).decode("ascii")
        return f"{HEADER}\n{self.origin}\n{self.size}\n{root}\n{signature}\n".encode()

    def sign(self, key: Ed25519PrivateKey) -> SignedHighWaterMark:
        return SignedHighWaterMark(self, key.sign(self.body()))


@dataclass(frozen=True)
class SignedHighWaterMark:
    mark: HighWaterMark
    signature: bytes

    def to_text(self) -> str:
        signature = base64.b64encode(self.signature).decode("ascii")
        return self.mark.body().decode() + f"signature {signature}\n"

    @classmethod
    def from_text(cls, text: str) -> SignedHighWaterMark:
        lines = text.split("\n")
        if len(lines) != 7 or lines[0] != HEADER or lines[6] != "":
            raise HighWaterFormatError(f"expected 6 lines starting with {HEADER!r}")
        origin, size_text, root_text, checkpoint_text, signature_line = lines[1:6]
        if not size_text.isdigit() or not signature_line.startswith("signature "):
            raise HighWaterFormatError("the size or the signature line is malformed")
        try:
            root = base64.b64decode(root_text, validate=True)
            checkpoint_signature = base64.b64decode(checkpoint_text, validate=True)
            signature = base64.b64decode(signature_line.removeprefix("signature "), validate=True)
        except binascii.Error as exc:
            raise HighWaterFormatError(f"bad base64: {exc}") from exc
        if len(root) != 32 or len(signature) != 64 or len(checkpoint_signature) != 64:
            raise HighWaterFormatError("the root must be 32 bytes and the signatures 64")
        mark = HighWaterMark(origin, int(size_text), root, checkpoint_signature)
        return cls(mark, signature)

    def verifies(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.mark.body())
        except InvalidSignature:
            return False
        return True


class HighWaterStore(Protocol):
    """Where the marker is kept (the node: beside its keys, written atomically)."""

    def load(self) -> SignedHighWaterMark | None:
        """The stored marker, or None if there is none. Raises HighWaterFormatError."""

    def save(self, marker: SignedHighWaterMark) -> None:
        """Replace the marker durably (fsync'd) before returning."""

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the marker against every other writer, in any process, while inside."""


def rollback_problems(
    marker: SignedHighWaterMark,
    public_key: Ed25519PublicKey,
    origin: str,
    size: int,
    root_at: dict[int, bytes],
) -> list[str]:
    """Why a ledger of `size` entries (with `root_at[marker size]` if it is that long)
    is not at least what the marker says was signed; empty when it is."""
    mark = marker.mark
    if not marker.verifies(public_key):
        return ["the high-water marker's signature does not verify with the ledger key"]
    if mark.origin != origin:
        return [f"the high-water marker is for origin {mark.origin!r}, not {origin!r}"]
    if size < mark.size:
        return [
            f"the ledger has {size} entries but this node has signed a checkpoint of "
            f"size {mark.size}: it was truncated, restored from an older copy or replaced"
        ]
    if mark.size > 0 and root_at.get(mark.size) != mark.root:
        return [
            f"the ledger's root at size {mark.size} differs from the checkpoint this node "
            "signed at that size: its history was rewritten (a fork)"
        ]
    return []


def raise_high_water(
    store: HighWaterStore | None, signed: SignedCheckpoint, key: Ed25519PrivateKey
) -> None:
    """Record `signed` as the high-water mark unless a larger one is already stored.

    Call after the checkpoint is committed, holding the store's `exclusive()` lock (so
    marks from several processes only ever grow). No store: nothing to do.
    """
    if store is None:
        return
    try:
        current = store.load()
        if current is not None and current.mark.size >= signed.checkpoint.size:
            return
        store.save(HighWaterMark.of(signed).sign(key))
    except (OSError, HighWaterFormatError) as exc:
        raise LedgerFault(f"could not record the ledger's high-water mark: {exc}") from exc


def high_water_problems(
    store: HighWaterStore, reader: LedgerReader, public_key: Ed25519PublicKey
) -> list[str]:
    """Why the ledger behind `reader` is shorter than, or forked from, the stored mark."""
    try:
        marker = store.load()
    except (OSError, HighWaterFormatError) as exc:
        return [f"the high-water marker cannot be read: {exc}"]
    if marker is None:
        return []
    size = reader.size()
    roots = {marker.mark.size: reader.root(marker.mark.size)} if size >= marker.mark.size else {}
    return rollback_problems(marker, public_key, reader.origin, size, roots)


def with_high_water(
    report: SelfCheckReport,
    store: HighWaterStore | None,
    reader: LedgerReader,
    public_key: Ed25519PublicKey,
) -> SelfCheckReport:
    """`report` plus the high-water problems of the ledger behind `reader` (if a store)."""
    problems = [] if store is None else high_water_problems(store, reader, public_key)
    if not problems:
        return report
    return dataclasses.replace(report, ok=False, problems=[*report.problems, *problems])
