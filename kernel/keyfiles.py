"""Making keys and CSRs, and writing them to disk safely.

Private keys are generated where they are used and written once, mode 0600, never
over an existing file (O_EXCL): losing a key by accident is worse than an error.
ECDSA P-256 for TLS (gRPC refuses Ed25519 TLS certificates); Ed25519 for application
signatures (requests, ledger).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from kernel.identity import Identity, KeyFileError

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def generate_tls_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def generate_ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS8 PEM: the file's 0600 mode is the protection."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


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
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError as exc:
        raise KeyFileError(
            f"refusing to overwrite existing key {path}: move it away first if you really "
            "mean to replace it"
        ) from exc
    # The umask may have narrowed the mode further, never widened it; pin it exactly.
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_public_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write a public file (certificate, CSR, public key), atomically when replacing."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"refusing to overwrite existing {path}")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(PUBLIC_FILE_MODE)
    os.replace(temporary, path)


def build_csr(
    key: ec.EllipticCurvePrivateKey,
    identity: Identity,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[IPAddress] = (),
) -> x509.CertificateSigningRequest:
    """A CSR naming `identity` in its URI SAN (the CA decides what finally goes in)."""
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
