"""C2SP signed notes (https://c2sp.org/signed-note): the text envelope of a checkpoint.

A note is a text (here a checkpoint body) ending in a newline, then a blank line, then
one signature line per signer:

    "\u2014 " <key name> " " base64(4-byte key hash || signature) "\n"

For Ed25519 (signature type 0x01) the key hash is the first 4 bytes of
SHA-256(key name || 0x0A || 0x01 || 32-byte public key) and the signature is over the
text alone (not the blank line, not the signature lines). A verifier ignores lines of
keys it does not know, so witnesses can add cosignature lines of their own.

Generic: nothing here knows about checkpoints; `privacy.tlog` builds on it. Pure and
cheap to import (hashlib and base64 only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

SIGNATURE_LINE_PREFIX = "\u2014 "
"""U+2014 EM DASH and a space: how every signature line starts."""

ED25519_SIGNATURE_TYPE = b"\x01"
KEY_HASH_SIZE = 4
ED25519_SIGNATURE_SIZE = 64
MAX_SIGNATURES = 100
"""The Go reference implementation refuses notes with more signature lines than this."""


class NoteFormatError(ValueError):
    """A text that is not a well-formed signed note."""


def check_key_name(name: str) -> None:
    """A key name is non-empty UTF-8 with no whitespace and no '+' (the spec's rule)."""
    if not name:
        raise ValueError("a signed-note key name cannot be empty")
    if any(char.isspace() or char == "+" or ord(char) < 0x20 for char in name):
        raise ValueError(f"a signed-note key name has no spaces or '+', got {name!r}")


def ed25519_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key hash of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    check_key_name(name)
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    material = name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + public_key
    return hashlib.sha256(material).digest()[:KEY_HASH_SIZE]


def ed25519_verifier_key(name: str, public_key: bytes) -> str:
    """The key as Go's `note` verifiers take it: name+hex(key hash)+base64(0x01 || key)."""
    key_hash = ed25519_key_hash(name, public_key)
    encoded = base64.b64encode(ED25519_SIGNATURE_TYPE + public_key).decode()
    return f"{name}+{key_hash.hex()}+{encoded}"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name and the decoded base64 payload.

    For a C2SP line the payload is key hash || signature. A line of a key the reader
    does not know is kept as it is (its payload may be of another signature type).
    """

    name: str
    payload: bytes

    def to_line(self) -> str:
        check_key_name(self.name)
        return f"{SIGNATURE_LINE_PREFIX}{self.name} {base64.b64encode(self.payload).decode()}\n"


def check_note_text(text: str) -> None:
    """The signed text: non-empty, newline-terminated, no blank line, no control chars."""
    if not text.endswith("\n"):
        raise NoteFormatError("a note text must end with a newline")
    if text.startswith("\n") or "\n\n" in text:
        raise NoteFormatError("a note text cannot contain a blank line")
    if any(ord(char) < 0x20 and char != "\n" for char in text):
        raise NoteFormatError("a note text cannot contain control characters")


def format_note(text: str, signatures: Sequence[NoteSignature]) -> str:
    """The note: the text, a blank line, then the signature lines in order."""
    check_note_text(text)
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise ValueError(f"a note carries 1 to {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(signature.to_line() for signature in signatures)


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a note into its signed text and its signature lines (not verified here)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteFormatError("a signed note needs a blank line before its signature lines")
    text, signature_block = note[: split + 1], note[split + 2 :]
    check_note_text(text)
    if not signature_block.endswith("\n"):
        raise NoteFormatError("every signature line must end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(f"a note carries at most {MAX_SIGNATURES} signature lines")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_LINE_PREFIX):
        raise NoteFormatError(
            "a signature line must start with an em dash (U+2014) and a space: "
            "'\u2014 KEYNAME BASE64'"
        )
    name, space, encoded = line[len(SIGNATURE_LINE_PREFIX) :].partition(" ")
    if not space or " " in encoded:
        raise NoteFormatError("a signature line is '\u2014 KEYNAME BASE64', with single spaces")
    try:
        check_key_name(name)
        payload = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise NoteFormatError(f"the signature of {name!r} is not base64") from exc
    except ValueError as exc:
        raise NoteFormatError(str(exc)) from exc
    if len(payload) < KEY_HASH_SIZE + 1:
        raise NoteFormatError(f"the signature of {name!r} is too short to carry a key hash")
    return NoteSignature(name, payload)
