"""Who a partnership member is, as written in their X.509 certificate.

Every certificate the partnership CA issues names its holder in a URI SAN
`npcs://PARTNERSHIP/ROLE/NAME`. People who sign requests also carry a second URI SAN,
`npcs-signing-key:sha256:<hex>`, binding their Ed25519 request-signing key to the
certificate. Nodes authorise callers from these SANs only (read from the gRPC
AuthContext by `node.peer` after the mTLS handshake has checked the chain).

Pure helpers on certificate objects: no files (`kernel.keyfiles`), no networking, no gRPC.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from cryptography import x509

Role = Literal["node", "analyst", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)

IDENTITY_SCHEME = "npcs"
SIGNING_KEY_URI_PREFIX = "npcs-signing-key:sha256:"

# Names end up in URIs, file names and TOML: keep them to a safe, readable alphabet.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class IdentityError(ValueError):
    """A malformed identity URI, or a certificate that does not name exactly one identity."""


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
    from cryptography.hazmat.primitives import serialization  # ~8 ms; not for `npcs query`

    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


# --- certificates -------------------------------------------------------------------------


def uri_sans(certificate: x509.Certificate) -> list[str]:
    """All URI subject alternative names of a certificate (empty if it has none)."""
    from cryptography import x509  # x509's import costs ~40 ms; `npcs query` never needs it

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
