"""Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

The vectors below are literals: a change to the key hash, the note layout or the signed
bytes changes the text and fails these tests, whatever the code computes.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kernel.keyfiles import generate_ed25519_key
from privacy import signed_note, tlog
from privacy.signed_note import NoteFormatError, NoteSignature
from privacy.tlog import Checkpoint, CheckpointFormatError, SignedCheckpoint

# --- the hand-derived vector ------------------------------------------------------------
#
# 1. Private key: the 32-byte Ed25519 seed 00 01 02 ... 1f (RFC 8032 derives the key pair
#    from it; the public key is the well-known
#    03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8).
SEED = bytes(range(32))
PUBLIC_KEY_HEX = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
# 2. Checkpoint: origin (= key name) "npcs/example/county-a/ledger", size 4, root hash the
#    32 bytes 20 21 22 ... 3f, whose base64 is "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".
ORIGIN = "npcs/example/county-a/ledger"
ROOT = bytes(range(0x20, 0x40))
# 3. Body (the signed text): the three lines, each ending in "\n".
BODY = "npcs/example/county-a/ledger\n4\nICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n"
# 4. Key hash input: key name || 0x0A || 0x01 (Ed25519) || public key, in hex:
#    6e7063732f6578616d706c652f636f756e74792d612f6c6564676572   "npcs/example/county-a/ledger"
#    0a 01                                                       newline, signature type
#    03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8   public key
#    SHA-256 of it: d3f06e8874f1329ca8fb98a4ec4f7bb137c7e65169cacb5ec25370edf7456552;
#    the key hash is its first 4 bytes, d3 f0 6e 88.
KEY_HASH_INPUT_HEX = (
    "6e7063732f6578616d706c652f636f756e74792d612f6c6564676572"
    "0a01"
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
)
KEY_HASH = bytes.fromhex("d3f06e88")
# 5. Ed25519 (deterministic) signature of the BODY bytes under the seed's key:
SIGNATURE = bytes.fromhex(
    "2de4cf1c360402bf5aeccec5e3147c2a44b44a88b6ecd9d9dd3fb5dceb6bebe7"
    "5bd56deffb00b0759f7f273798610b65ce4efe7efcf69de9ed7d6fc0166b3f04"
)
# 6. The note: body, a blank line, then "— " + key name + " " + base64(key hash || signature)
#    (68 bytes, 92 base64 characters) + "\n". The dash is U+2014 EM DASH.
NOTE = (
    "npcs/example/county-a/ledger\n"
    "4\n"
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n"
    "\n"
    "\u2014 npcs/example/county-a/ledger "
    "0/BuiC3kzxw2BAK/WuzOxeMUfCpEtEqItuzZ2d0/tdzra+vnW9Vt7/sAsHWffyc3mGELZc5O/n789p3p7X1vwBZrPwQ=\n"
)
# The same checkpoint as the node wrote it before C2SP: the bare 64-byte signature.
LEGACY_NOTE = (
    BODY + "\n\u2014 npcs/example/county-a/ledger " + base64.b64encode(SIGNATURE).decode() + "\n"
)


def vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def test_the_hand_derived_steps_hold() -> None:
    public = tlog.raw_public_key(vector_key().public_key())
    assert public.hex() == PUBLIC_KEY_HEX
    assert (ORIGIN.encode() + b"\n\x01" + public).hex() == KEY_HASH_INPUT_HEX
    assert hashlib.sha256(bytes.fromhex(KEY_HASH_INPUT_HEX)).digest()[:4] == KEY_HASH
    assert base64.b64decode(NOTE.rsplit(" ", 1)[1]) == KEY_HASH + SIGNATURE


def test_signing_the_vector_checkpoint_gives_the_literal_note() -> None:
    checkpoint = Checkpoint(ORIGIN, 4, ROOT)
    assert checkpoint.to_text() == BODY
    assert signed_note.ed25519_key_hash(ORIGIN, bytes.fromhex(PUBLIC_KEY_HEX)) == KEY_HASH
    signed = checkpoint.sign(vector_key())
    assert signed.key_hash == KEY_HASH
    assert signed.signature == SIGNATURE
    assert signed.to_text() == NOTE
    assert SignedCheckpoint(checkpoint, SIGNATURE).to_text(vector_key().public_key()) == NOTE


def test_the_vector_key_as_a_note_verifier_key() -> None:
    # name "+" hex(key hash) "+" base64(0x01 || public key)
    assert signed_note.ed25519_verifier_key(ORIGIN, bytes.fromhex(PUBLIC_KEY_HEX)) == (
        "npcs/example/county-a/ledger+d3f06e88+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
    )


def test_the_literal_note_reads_and_verifies() -> None:
    signed = SignedCheckpoint.from_text(NOTE)
    assert signed.checkpoint == Checkpoint(ORIGIN, 4, ROOT)
    assert (signed.key_hash, signed.signature) == (KEY_HASH, SIGNATURE)
    assert signed.verify(vector_key().public_key())


def test_the_go_reference_note_is_reproduced_byte_for_byte() -> None:
    """The example of golang.org/x/mod/sumdb/note's tests: a generic note, not a checkpoint.

    Its signer key is "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64(0x01 || seed) and its
    verifier key "PeterNeumann+c74f20a3+" + base64(0x01 || public key).
    """
    material = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
    key = Ed25519PrivateKey.from_private_bytes(material[1:])
    public = tlog.raw_public_key(key.public_key())
    assert base64.b64encode(b"\x01" + public).decode() == (
        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    key_hash = signed_note.ed25519_key_hash("PeterNeumann", public)
    assert key_hash.hex() == "c74f20a3"
    assert signed_note.ed25519_verifier_key("PeterNeumann", public) == (
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    line = NoteSignature("PeterNeumann", key_hash + key.sign(text.encode()))
    assert signed_note.format_note(text, [line]) == (
        text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
        "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )


def test_a_checkpoint_kept_in_the_old_format_still_reads_and_verifies() -> None:
    signed = SignedCheckpoint.from_text(LEGACY_NOTE)
    assert signed.key_hash is None
    assert signed.signature == SIGNATURE
    assert signed.verify(vector_key().public_key())
    assert signed.to_text(vector_key().public_key()) == NOTE  # rewritten in the C2SP form


def test_a_key_hash_that_does_not_name_the_pinned_key_is_refused() -> None:
    wrong_hash = bytes([KEY_HASH[0] ^ 1]) + KEY_HASH[1:]
    forged = NOTE.replace(
        base64.b64encode(KEY_HASH + SIGNATURE).decode(),
        base64.b64encode(wrong_hash + SIGNATURE).decode(),
    )
    signed = SignedCheckpoint.from_text(forged)
    assert signed.signature == SIGNATURE  # the signature itself is valid ...
    assert not signed.verify(vector_key().public_key())  # ... but names another key
    assert not SignedCheckpoint.from_text(NOTE).verify(generate_ed25519_key().public_key())


def test_other_keys_lines_are_ignored_so_witnesses_can_cosign() -> None:
    cosignature = NoteSignature("witness.example/w1", bytes(4) + bytes(72))
    cosigned = NOTE + cosignature.to_line()
    signed = SignedCheckpoint.from_text(cosigned)
    assert signed.verify(vector_key().public_key())
    first = SignedCheckpoint.from_text(BODY + "\n" + cosignature.to_line() + NOTE.split("\n\n")[1])
    assert first.signature == SIGNATURE


def test_extension_lines_are_part_of_the_signed_body() -> None:
    checkpoint = Checkpoint(ORIGIN, 4, ROOT, ("extension one", "extension two"))
    assert checkpoint.to_text() == BODY + "extension one\nextension two\n"
    note = checkpoint.sign(vector_key()).to_text()
    signed = SignedCheckpoint.from_text(note)
    assert signed.checkpoint == checkpoint
    assert signed.verify(vector_key().public_key())
    without = SignedCheckpoint(Checkpoint(ORIGIN, 4, ROOT), signed.signature, signed.key_hash)
    assert not without.verify(vector_key().public_key())


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (BODY, "blank line"),
        (NOTE.replace("\u2014", "-"), "em dash"),
        (NOTE.replace("\u2014 npcs/", "\u2014  npcs/"), "single spaces"),
        (NOTE.replace("\u2014 npcs/", "\u2014 a+npcs/"), "key name"),
        (NOTE[:-1], "newline"),
        (NOTE.replace("0/Bui", "0/B!i"), "base64"),
        (
            BODY + "\n\u2014 other.example/log " + base64.b64encode(SIGNATURE).decode() + "\n",
            "no signature line names",
        ),
        (BODY + "\n\u2014 npcs/example/county-a/ledger AAAAAAAAAAAA\n", "not an Ed25519"),
        (
            BODY + "\n" + "".join(NoteSignature(f"w{i}", bytes(68)).to_line() for i in range(101)),
            "at most 100",
        ),
        (BODY.replace("\n4\n", "\n4\x07\n") + NOTE.split(BODY)[1], "control characters"),
    ],
)
def test_malformed_notes_are_refused_with_the_reason(note: str, reason: str) -> None:
    with pytest.raises(CheckpointFormatError, match=reason):
        SignedCheckpoint.from_text(note)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there"])
def test_key_names_follow_the_spec(name: str) -> None:
    with pytest.raises(ValueError, match="key name"):
        signed_note.ed25519_key_hash(name, bytes(32))


def test_writing_a_note_needs_the_key_hash() -> None:
    with pytest.raises(ValueError, match="public key"):
        SignedCheckpoint(Checkpoint(ORIGIN, 4, ROOT), SIGNATURE).to_text()
    with pytest.raises(NoteFormatError):
        signed_note.format_note("a\n\nb\n", [NoteSignature("k", bytes(68))])
