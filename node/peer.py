"""Who is calling: the peer's certificate, read from the gRPC AuthContext.

After the mTLS handshake has checked the chain, gRPC hands each call an AuthContext
holding the peer's PEM certificate. This module reads it as a plain mapping, so it
needs no gRPC import; `node.security` decides what the peer may do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cryptography import x509

from kernel.identity import Identity, IdentityError, Peer, peer_from_certificate
from kernel.keyfiles import load_certificate

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
