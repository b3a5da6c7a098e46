"""Ed25519 keys from their PEM text without cryptography's `serialization` package.

`cryptography.hazmat.primitives.serialization` loads every key format it knows (SSH keys
and their ciphers, RSA, DSA, EC, ...): about 8 ms of every `npcs query`, which reads one
Ed25519 private key (the analyst's signing key) and one Ed25519 public key (each node's
ledger key). PEM files of Ed25519 keys, as cryptography writes them
(`kernel.keyfiles.private_key_pem`, `public_key_pem`), have one form each (RFC 8410): a
fixed DER prefix, then the 32 raw key bytes, base64 on one line.

These functions return the 32 bytes only when the text is, byte for byte, that encoding
of them, so reading a key here and with `serialization.load_pem_*` cannot give different
keys. For any other text they return None and the caller uses the full parser, with its
checks and its errors.
"""

from __future__ import annotations

import base64
import binascii

RAW_KEY_BYTES = 32
PKCS8_PRIVATE_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
"""PrivateKeyInfo: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
OCTET STRING (32 bytes) } }"""
SPKI_PUBLIC_PREFIX = bytes.fromhex("302a300506032b6570032100")
"""SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (32 bytes) }"""


def canonical_private_bytes(pem: bytes) -> bytes | None:
    """The raw private key of a canonical PKCS#8 Ed25519 PEM; None for any other text."""
    return _canonical_raw_key(pem, b"PRIVATE KEY", PKCS8_PRIVATE_PREFIX)


def canonical_public_bytes(pem: bytes) -> bytes | None:
    """The raw public key of a canonical SubjectPublicKeyInfo Ed25519 PEM; None otherwise."""
    return _canonical_raw_key(pem, b"PUBLIC KEY", SPKI_PUBLIC_PREFIX)


def _canonical_raw_key(pem: bytes, label: bytes, prefix: bytes) -> bytes | None:
    begin, end = b"-----BEGIN " + label + b"-----\n", b"\n-----END " + label + b"-----\n"
    if not (pem.startswith(begin) and pem.endswith(end)):
        return None
    try:
        der = base64.b64decode(pem[len(begin) : -len(end)], validate=True)
    except binascii.Error:
        return None
    if len(der) != len(prefix) + RAW_KEY_BYTES or not der.startswith(prefix):
        return None
    if pem != begin + base64.b64encode(der) + end:
        return None  # base64 that decodes alike but is not the canonical text
    return der[len(prefix) :]
