"""Ed25519 keys read from canonical PEM without `serialization` are the keys cryptography reads.

`kernel.ed25519_pem` takes the raw key bytes only from text that is byte for byte the
PEM cryptography writes; every other text goes to cryptography's parser as before, with
the same result or the same error.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

from kernel.ed25519_pem import canonical_private_bytes, canonical_public_bytes
from kernel.keyfiles import (
    KeyFileError,
    generate_ed25519_key,
    load_ed25519_private_key,
    private_key_pem,
    public_key_from_pem,
    public_key_pem,
)

KEYS = [generate_ed25519_key() for _ in range(64)]


def test_canonical_pem_of_every_key_gives_its_raw_bytes() -> None:
    for key in KEYS:
        assert canonical_private_bytes(private_key_pem(key)) == key.private_bytes_raw()
        public = key.public_key()
        assert canonical_public_bytes(public_key_pem(public)) == public.public_bytes_raw()


def test_signing_key_file_loads_the_key_cryptography_loads(tmp_path: Path) -> None:
    for index, key in enumerate(KEYS):
        path = tmp_path / f"{index}.key"
        path.write_bytes(private_key_pem(key))
        loaded = load_ed25519_private_key(path)
        assert loaded.private_bytes_raw() == key.private_bytes_raw()
        public = public_key_from_pem(public_key_pem(key.public_key()))
        assert public.public_bytes_raw() == key.public_key().public_bytes_raw()


def _crlf(pem: bytes) -> bytes:
    return pem.replace(b"\n", b"\r\n")


def _text_before(pem: bytes) -> bytes:
    return b"my signing key\n" + pem


def _no_final_newline(pem: bytes) -> bytes:
    return pem[:-1]


def _extra_final_newline(pem: bytes) -> bytes:
    return pem + b"\n"


BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _padding_bits_set(pem: bytes) -> bytes:
    """The same DER in base64 whose unused low bits are not zero (it decodes alike)."""
    begin, body, rest = pem.split(b"\n", 2)
    data = body.rstrip(b"=")
    if data == body:
        return pem  # no unused bits: the private key's 48 bytes fill whole groups
    index = BASE64_ALPHABET.index(data[-1:]) ^ 1  # the lowest bit is one of the unused
    body = data[:-1] + BASE64_ALPHABET[index : index + 1] + body[len(data) :]
    return b"\n".join((begin, body, rest))


VARIANTS: list[Callable[[bytes], bytes]] = [
    _crlf,
    _text_before,
    _no_final_newline,
    _extra_final_newline,
    _padding_bits_set,
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
def test_other_texts_of_the_same_key_go_to_the_full_parser_with_the_same_result(
    variant: Callable[[bytes], bytes], tmp_path: Path
) -> None:
    key = KEYS[0]
    for pem, canonical in (
        (private_key_pem(key), canonical_private_bytes),
        (public_key_pem(key.public_key()), canonical_public_bytes),
    ):
        text = variant(pem)
        if text != pem:
            assert canonical(text) is None
    private_text = variant(private_key_pem(key))
    path = tmp_path / "signing.key"
    path.write_bytes(private_text)
    public_text = variant(public_key_pem(key.public_key()))
    _assert_same_outcome(private_text, lambda: load_ed25519_private_key(path).public_key())
    _assert_same_outcome(public_text, lambda: public_key_from_pem(public_text))


def _assert_same_outcome(text: bytes, load: Callable[[], ed25519.Ed25519PublicKey]) -> None:
    """`load` gives the key cryptography's parser reads from `text`, or a KeyFileError
    where that parser refuses it."""
    try:
        expected = _cryptography_public_raw(text)
    except ValueError:
        with pytest.raises(KeyFileError):
            load()
        return
    assert load().public_bytes_raw() == expected


def _cryptography_public_raw(text: bytes) -> bytes:
    """What cryptography's own parser makes of `text`: the public key's raw bytes."""
    if b"PRIVATE" in text:
        private = serialization.load_pem_private_key(text, password=None)
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        return private.public_key().public_bytes_raw()
    public = serialization.load_pem_public_key(text)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    return public.public_bytes_raw()


def test_keys_of_other_kinds_and_encrypted_keys_are_left_to_the_full_parser(
    tmp_path: Path,
) -> None:
    others: dict[str, ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey] = {
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed448": ed448.Ed448PrivateKey.generate(),
    }
    for name, other in others.items():
        pem = other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert canonical_private_bytes(pem) is None
        path = tmp_path / f"{name}.key"
        path.write_bytes(pem)
        with pytest.raises(KeyFileError, match="is not an Ed25519 private key"):
            load_ed25519_private_key(path)
        public = other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert canonical_public_bytes(public) is None
        with pytest.raises(KeyFileError, match="is not an Ed25519 public key"):
            public_key_from_pem(public)
    encrypted = KEYS[0].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert canonical_private_bytes(encrypted) is None
    path = tmp_path / "encrypted.key"
    path.write_bytes(encrypted)
    with pytest.raises(KeyFileError, match="is not an unencrypted PEM private key"):
        load_ed25519_private_key(path)


def test_a_private_key_is_not_read_as_a_public_key_or_the_reverse() -> None:
    key = KEYS[0]
    assert canonical_public_bytes(private_key_pem(key)) is None
    assert canonical_private_bytes(public_key_pem(key.public_key())) is None
    with pytest.raises(KeyFileError, match="is not a PEM public key"):
        public_key_from_pem(private_key_pem(key))


def test_wrong_prefix_or_length_is_not_canonical() -> None:
    der = base64.b64decode(private_key_pem(KEYS[0]).split(b"\n")[1])
    for bad in (der[:-1], der + b"\x00", b"\x31" + der[1:], der[:12] + b"\x71" + der[13:]):
        pem = b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(bad) + b"\n"
        pem += b"-----END PRIVATE KEY-----\n"
        assert canonical_private_bytes(pem) is None
