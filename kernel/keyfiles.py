"""Keys, certificates and CSRs: making them, encoding them, and their files on disk.

The one place for Ed25519 and X.509 key material: ECDSA P-256 for TLS (gRPC refuses
Ed25519 TLS certificates); Ed25519 for application signatures (requests, the ledger's
checkpoints). The fingerprint of an Ed25519 key is `privacy.tlog.key_fingerprint` (the
ledger, in `privacy`, needs it too).

Private keys are generated where they are used and written once, mode 0600, never
over an existing file (O_EXCL): losing a key by accident is worse than an error.
Reading a file that is missing or unreadable raises a KeyFileError that is also an
OSError (FileNotFoundError when missing), so callers may catch either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519

from kernel.ed25519_pem import canonical_private_bytes, canonical_public_bytes
from kernel.files import PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, atomic_write_bytes, create_exclusive
from kernel.identity import Identity

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# `serialization`, `hashes` and `ec` are imported where used: `npcs query` reads only
# Ed25519 keys (kernel/ed25519_pem.py), and they would cost it ~8 ms of imports.

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class KeyFileError(ValueError):
    """A key or certificate file that is missing, unreadable or of the wrong kind."""


class KeyFileReadError(KeyFileError, OSError):
    """A key or certificate file that cannot be read."""


class KeyFileMissingError(KeyFileReadError, FileNotFoundError):
    """A key or certificate file that does not exist."""


class KeyFileExistsError(KeyFileError, FileExistsError):
    """Refused: writing would replace an existing key or certificate file."""


# --- making and encoding keys -------------------------------------------------------------


def generate_tls_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def generate_ed25519_key() -> ed25519.Ed25519PrivateKey:
    """A request-signing or ledger key."""
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS8 PEM: the file's 0600 mode is the protection."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM."""
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return certificate.public_bytes(serialization.Encoding.PEM)


def public_key_from_raw(raw: bytes) -> ed25519.Ed25519PublicKey:
    """An Ed25519 public key from its raw 32 bytes (ValueError if they are not one)."""
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def public_key_from_pem(pem: bytes, *, source: str = "PEM data") -> ed25519.Ed25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) Ed25519 public key; KeyFileError naming `source`."""
    raw = canonical_public_bytes(pem)
    if raw is not None:  # the PEM as cryptography writes it: no parser needed
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyFileError(f"{source} is not a PEM public key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{source} is not an Ed25519 public key")
    return key


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a PEM or DER certificate; raise KeyFileError if it is neither."""
    from cryptography import x509  # not at the top: `npcs query` never parses certificates

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise KeyFileError(f"not a valid X.509 certificate: {exc}") from exc


# --- reading files ------------------------------------------------------------------------


def read_file(path: Path, what: str) -> bytes:
    """Read a key/certificate file, turning OS errors into a KeyFileError naming the file."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileMissingError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileReadError(f"cannot read {what} {path}: {exc.strerror}") from exc


def load_certificate_file(path: Path, what: str = "certificate") -> x509.Certificate:
    data = read_file(path, what)
    try:
        return load_certificate(data)
    except KeyFileError as exc:
        raise KeyFileError(f"{what} {path} is {exc}") from exc


def load_ec_private_key(path: Path, what: str = "TLS key") -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM ECDSA P-256 private key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _parse_private_key(read_file(path, what), path, what)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{what} {path} is not an ECDSA P-256 key")
    return key


def load_ed25519_private_key(path: Path, what: str = "signing key") -> ed25519.Ed25519PrivateKey:
    """Load an unencrypted PEM (PKCS8) Ed25519 private key."""
    data = read_file(path, what)
    raw = canonical_private_bytes(data)
    if raw is not None:  # the PEM as cryptography writes it: no parser needed
        return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    key = _parse_private_key(data, path, what)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{what} {path} is not an Ed25519 private key")
    return key


def load_ed25519_public_key(path: Path, what: str = "public key") -> ed25519.Ed25519PublicKey:
    """Load a PEM (SubjectPublicKeyInfo) Ed25519 public key."""
    return public_key_from_pem(read_file(path, what), source=f"{what} {path}")


def _parse_private_key(data: bytes, path: Path, what: str) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{what} {path} is not an unencrypted PEM private key: {exc}") from exc


# --- writing files ------------------------------------------------------------------------


def refuse_existing(paths: Iterable[Path]) -> None:
    """Raise KeyFileError naming every path that already exists."""
    existing = [str(path) for path in paths if path.exists()]
    if existing:
        raise KeyFileError(
            f"refusing to overwrite existing {', '.join(existing)}: "
            "move them away first if you really mean to replace them"
        )


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 and write `data`; never overwrite an existing file."""
    try:
        create_exclusive(path, data, mode=PRIVATE_FILE_MODE)
    except FileExistsError as exc:
        raise KeyFileExistsError(
            f"refusing to overwrite existing key {path}: move it away first if you really "
            "mean to replace it"
        ) from exc


def write_public_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write a public file (certificate, CSR, public key), atomically when replacing."""
    if path.exists() and not overwrite:
        raise KeyFileExistsError(f"refusing to overwrite existing {path}")
    atomic_write_bytes(path, data, mode=PUBLIC_FILE_MODE)


# --- certificate signing requests ---------------------------------------------------------


def build_csr(
    key: ec.EllipticCurvePrivateKey,
    identity: Identity,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[IPAddress] = (),
) -> x509.CertificateSigningRequest:
    """A CSR naming `identity` in its URI SAN (the CA decides what finally goes in)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    names += [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(address) for address in ip_addresses]
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_for(identity))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )


def subject_for(identity: Identity) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.partnership),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.role),
            x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
        ]
    )


def parse_ip_addresses(values: Iterable[str]) -> list[IPAddress]:
    """Parse IP address strings, raising ValueError naming the bad one."""
    addresses: list[IPAddress] = []
    for value in values:
        try:
            addresses.append(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address") from exc
    return addresses
