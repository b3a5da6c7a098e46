"""Who a partnership member is, as written in their X.509 certificate.

Every certificate the partnership CA issues names its holder in a URI SAN
`npcs://PARTNERSHIP/ROLE/NAME`. People who sign requests also carry a second URI SAN,
`npcs-signing-key:sha256:<hex>`, binding their Ed25519 request-signing key to the
certificate. Nodes authorise callers from these SANs only (read from the gRPC
AuthContext after the mTLS handshake has checked the chain).

Pure helpers: no networking, no gRPC import.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

Role = Literal["node", "analyst", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)

IDENTITY_SCHEME = "npcs"
SIGNING_KEY_URI_PREFIX = "npcs-signing-key:sha256:"

# Names end up in URIs, file names and TOML: keep them to a safe, readable alphabet.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class IdentityError(ValueError):
    """A malformed identity URI, or a certificate that does not name exactly one identity."""


class KeyFileError(ValueError):
    """A key or certificate file that is missing, unreadable or of the wrong kind."""


def check_name(value: str, what: str) -> str:
    """Return `value` if it is a valid partnership/member name, else raise IdentityError."""
    if not _NAME_PATTERN.fullmatch(value):
        raise IdentityError(
            f"{what} {value!r} is not a valid name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_role(value: str) -> Role:
    """Return `value` as a Role if it is one of node, analyst, auditor."""
    for role in ROLES:
        if value == role:
            return role
    raise IdentityError(f"role {value!r} is not one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Identity:
    """A partnership member: `npcs://PARTNERSHIP/ROLE/NAME`."""

    partnership: str
    role: Role
    name: str

    def __post_init__(self) -> None:
        check_name(self.partnership, "partnership")
        check_role(self.role)
        check_name(self.name, f"{self.role} name")

    @property
    def uri(self) -> str:
        return format_identity_uri(self)

    @classmethod
    def parse(cls, uri: str) -> Identity:
        return parse_identity_uri(uri)

    def __str__(self) -> str:
        return self.uri


def format_identity_uri(identity: Identity) -> str:
    """`npcs://PARTNERSHIP/ROLE/NAME` for an identity."""
    return f"{IDENTITY_SCHEME}://{identity.partnership}/{identity.role}/{identity.name}"


def parse_identity_uri(uri: str) -> Identity:
    """Parse `npcs://PARTNERSHIP/ROLE/NAME`; raise IdentityError naming what is wrong."""
    prefix = f"{IDENTITY_SCHEME}://"
    if not uri.startswith(prefix):
        raise IdentityError(f"identity URI {uri!r} does not start with {prefix!r}")
    parts = uri[len(prefix) :].split("/")
    if len(parts) != 3:
        raise IdentityError(
            f"identity URI {uri!r} must have the form {prefix}PARTNERSHIP/ROLE/NAME"
        )
    partnership, role, name = parts
    return Identity(partnership=partnership, role=check_role(role), name=name)


def is_identity_uri(uri: str) -> bool:
    return uri.startswith(f"{IDENTITY_SCHEME}://")


def signing_key_uri(fingerprint: str) -> str:
    """The URI SAN that binds an Ed25519 signing key (by fingerprint) to a certificate."""
    return SIGNING_KEY_URI_PREFIX + check_fingerprint(fingerprint)


def check_fingerprint(value: str) -> str:
    """Return a SHA-256 fingerprint in canonical form (64 lowercase hex digits)."""
    canonical = normalise_fingerprint(value)
    if not _FINGERPRINT_PATTERN.fullmatch(canonical):
        raise IdentityError(f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
    return canonical


def normalise_fingerprint(value: str) -> str:
    """Lowercase hex without ':' separators or spaces.

    Accepts the whole line `openssl x509 -fingerprint -sha256` prints
    (`sha256 Fingerprint=AB:CD:...`) as well as the bare digits.
    """
    digits = value.rpartition("=")[2]
    return digits.strip().lower().replace(":", "").replace(" ", "")


# --- fingerprints -------------------------------------------------------------------------


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, lowercase hex (the revocation key)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def signing_key_fingerprint(public_key: ed25519.Ed25519PublicKey | bytes) -> str:
    """SHA-256 of the raw 32-byte Ed25519 public key, lowercase hex."""
    raw = public_key if isinstance(public_key, bytes) else ed25519_public_bytes(public_key)
    return hashlib.sha256(raw).hexdigest()


def ed25519_public_bytes(public_key: ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- certificates -------------------------------------------------------------------------


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a PEM or DER certificate; raise KeyFileError if it is neither."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise KeyFileError(f"not a valid X.509 certificate: {exc}") from exc


def uri_sans(certificate: x509.Certificate) -> list[str]:
    """All URI subject alternative names of a certificate (empty if it has none)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value.get_values_for_type(x509.UniformResourceIdentifier))


def identity_from_certificate(certificate: x509.Certificate) -> Identity:
    """The one `npcs://` identity a certificate names; IdentityError if none or several."""
    identities = [uri for uri in uri_sans(certificate) if is_identity_uri(uri)]
    if len(identities) != 1:
        raise IdentityError(
            f"certificate must name exactly one npcs:// identity in its URI SAN, "
            f"found {len(identities)}: was it issued by the partnership CA (`npcs ca sign`)?"
        )
    return parse_identity_uri(identities[0])


def bound_signing_key_fingerprint(certificate: x509.Certificate) -> str | None:
    """The fingerprint of the Ed25519 signing key bound to a certificate, if any."""
    bound = [uri for uri in uri_sans(certificate) if uri.startswith(SIGNING_KEY_URI_PREFIX)]
    if not bound:
        return None
    if len(bound) > 1:
        raise IdentityError("certificate binds more than one request-signing key")
    return check_fingerprint(bound[0][len(SIGNING_KEY_URI_PREFIX) :])


@dataclass(frozen=True)
class Peer:
    """A caller as its verified TLS certificate describes it."""

    identity: Identity
    certificate_fingerprint: str
    signing_key_fingerprint: str | None


def peer_from_certificate(certificate: x509.Certificate) -> Peer:
    return Peer(
        identity=identity_from_certificate(certificate),
        certificate_fingerprint=certificate_fingerprint(certificate),
        signing_key_fingerprint=bound_signing_key_fingerprint(certificate),
    )


# --- gRPC AuthContext (as a plain mapping, so this module needs no grpc import) -----------

# gRPC returns {key: [bytes, ...]}; grpc-stubs declares {key: bytes}. Accept both.
AuthContext = Mapping[str, Iterable[bytes]] | Mapping[str, bytes]


def _auth_values(auth_context: AuthContext, key: str) -> list[bytes]:
    value = auth_context.get(key)
    if value is None:
        return []
    if isinstance(value, bytes):
        return [value]
    return [bytes(item) for item in value]


def certificate_from_auth_context(auth_context: AuthContext) -> x509.Certificate:
    """The peer certificate from `grpc.ServicerContext.auth_context()`.

    Raises IdentityError when the connection is not TLS or the peer sent no certificate.
    """
    security = _auth_values(auth_context, "transport_security_type")
    if security != [b"ssl"]:
        raise IdentityError("connection is not protected by TLS: the peer is unauthenticated")
    certificates = _auth_values(auth_context, "x509_pem_cert")
    if len(certificates) != 1:
        raise IdentityError("peer presented no client certificate")
    return load_certificate(certificates[0])


def peer_from_auth_context(auth_context: AuthContext) -> Peer:
    """Identity and fingerprints of the caller, from the gRPC AuthContext."""
    return peer_from_certificate(certificate_from_auth_context(auth_context))


def identity_from_auth_context(auth_context: AuthContext) -> Identity:
    return peer_from_auth_context(auth_context).identity


# --- key and certificate files ------------------------------------------------------------


def read_file(path: Path, what: str) -> bytes:
    """Read a key/certificate file, turning OS errors into a KeyFileError naming the file."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror}") from exc


def load_certificate_file(path: Path, what: str = "certificate") -> x509.Certificate:
    data = read_file(path, what)
    try:
        return load_certificate(data)
    except KeyFileError as exc:
        raise KeyFileError(f"{what} {path} is {exc}") from exc


def load_ec_private_key(path: Path, what: str = "TLS key") -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM ECDSA P-256 private key."""
    key = _load_private_key(path, what)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{what} {path} is not an ECDSA P-256 key")
    return key


def load_ed25519_private_key(path: Path, what: str = "signing key") -> ed25519.Ed25519PrivateKey:
    """Load an unencrypted PEM (PKCS8) Ed25519 private key."""
    key = _load_private_key(path, what)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{what} {path} is not an Ed25519 private key")
    return key


def load_ed25519_public_key(path: Path, what: str = "public key") -> ed25519.Ed25519PublicKey:
    """Load a PEM (SubjectPublicKeyInfo) Ed25519 public key."""
    data = read_file(path, what)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(f"{what} {path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{what} {path} is not an Ed25519 public key")
    return key


def _load_private_key(path: Path, what: str) -> PrivateKeyTypes:
    data = read_file(path, what)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{what} {path} is not an unencrypted PEM private key: {exc}") from exc
