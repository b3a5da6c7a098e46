"""The node's TLS material and who may call what.

`load_server_credentials` feeds `grpc.ssl_server_credentials(..., require_client_auth=True)`:
gRPC then only completes handshakes with peers holding a certificate from the
partnership CA. `authorise_caller` decides, from the verified certificate in the gRPC
AuthContext alone, whether that peer may call a method. No gRPC import: the servicer
maps `Unauthenticated`/`PermissionDenied` to status codes via their `grpc_status`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import ClassVar

from kernel.identity import IdentityError, Peer, Role, normalise_fingerprint
from kernel.keyfiles import KeyFileError, load_certificate_file
from node.layout import NodePaths
from node.peer import AuthContext, certificate_from_auth_context, peer_from_auth_context
from node.revocation_list import RevocationList
from node.settings import NodeSettings

ANALYST_ROLES: frozenset[Role] = frozenset({"analyst"})
"""Who may Query and Preview."""
AUDITOR_ROLES: frozenset[Role] = frozenset({"auditor"})
"""Who may read ledgers (GetLedger, GetConsistencyProof)."""
MEMBER_ROLES: frozenset[Role] = frozenset({"analyst", "auditor"})
"""Who may Describe and GetCheckpoint."""


class MissingCredentialsError(FileNotFoundError):
    """The node folder lacks TLS files: `npcs-node install-cert` has not been run."""


class AccessDeniedError(Exception):
    grpc_status: ClassVar[str] = "PERMISSION_DENIED"


class Unauthenticated(AccessDeniedError):  # noqa: N818  (named after the gRPC status)
    """No verifiable partnership identity on the connection."""

    grpc_status = "UNAUTHENTICATED"


class PermissionDenied(AccessDeniedError):  # noqa: N818  (named after the gRPC status)
    """A known partnership member who may not call this method."""

    grpc_status = "PERMISSION_DENIED"


def load_server_credentials(paths: NodePaths) -> tuple[bytes, bytes, bytes]:
    """(key_pem, cert_pem, ca_pem) for the node's TLS server, or a clear MissingCredentialsError."""
    wanted = {
        paths.tls_key: "TLS private key (made by `npcs-node init`)",
        paths.tls_cert: "TLS certificate (installed by `npcs-node install-cert`)",
        paths.ca_cert: "partnership CA certificate (installed by `npcs-node install-cert`)",
    }
    missing = [f"  {path}: {what}" for path, what in wanted.items() if not path.is_file()]
    if missing:
        raise MissingCredentialsError(
            "the node cannot serve without its TLS files; missing:\n"
            + "\n".join(missing)
            + f"\nGet keys/tls.csr signed (`npcs ca sign`) and run "
            f"`npcs-node install-cert {paths.root} CERT --ca CA_CERT`."
        )
    try:
        return (
            paths.tls_key.read_bytes(),
            paths.tls_cert.read_bytes(),
            paths.ca_cert.read_bytes(),
        )
    except OSError as exc:
        raise KeyFileError(f"cannot read the node's TLS files: {exc}") from exc


def unrevoked_peer(auth_context: AuthContext, settings: NodeSettings) -> Peer:
    """The caller as its certificate names it, unless this node revoked that certificate.

    The check every service needs (health and reflection included; see
    `node.server.RevocationInterceptor`). Raises Unauthenticated when there is no usable
    peer certificate identity, PermissionDenied for a revoked certificate.
    """
    try:
        peer = peer_from_auth_context(auth_context)
    except (IdentityError, KeyFileError) as exc:
        raise Unauthenticated(f"no partnership identity on this connection: {exc}") from exc
    revoked = {normalise_fingerprint(value) for value in settings.revoked_fingerprints}
    if peer.certificate_fingerprint in revoked:
        raise PermissionDenied(
            f"the certificate of {peer.identity} (sha256 {peer.certificate_fingerprint}) "
            "has been revoked by this node"
        )
    return peer


def load_revocation_list(root: Path, settings: NodeSettings) -> RevocationList | None:
    """The CRL node.toml's `crl_file` names (relative to the node folder), verified
    against the partnership CA; None when no CRL is configured."""
    if settings.crl_file is None:
        return None
    paths = NodePaths(root)
    ca_certificate = load_certificate_file(paths.ca_cert, "partnership CA certificate")
    return RevocationList(root / settings.crl_file, ca_certificate)


def refuse_if_listed(auth_context: AuthContext, crl: RevocationList) -> None:
    """Raise PermissionDenied if the caller's certificate is on the CA's revocation list."""
    try:
        certificate = certificate_from_auth_context(auth_context)
    except IdentityError as exc:
        raise Unauthenticated(f"no partnership identity on this connection: {exc}") from exc
    if crl.is_revoked(certificate):
        raise PermissionDenied(
            f"the certificate with serial {certificate.serial_number:X} has been revoked by "
            "the partnership CA (its revocation list)"
        )


def authorise_caller(
    auth_context: AuthContext,
    settings: NodeSettings,
    allowed_roles: Collection[Role],
) -> Peer:
    """The caller as its certificate names it, if it may call a method open to `allowed_roles`.

    `auth_context` is `grpc.ServicerContext.auth_context()`. Raises Unauthenticated when
    there is no usable peer certificate identity, PermissionDenied for a revoked
    certificate, another partnership, a role not allowed here, or an analyst not listed
    in `allowed_analysts`.
    """
    peer = unrevoked_peer(auth_context, settings)
    identity = peer.identity
    if identity.partnership != settings.partnership:
        raise PermissionDenied(
            f"{identity} belongs to partnership {identity.partnership!r}, "
            f"not {settings.partnership!r}"
        )
    if identity.role not in allowed_roles:
        allowed = ", ".join(sorted(allowed_roles)) or "nobody"
        raise PermissionDenied(
            f"{identity} has role {identity.role!r}; this call is for: {allowed}"
        )
    if identity.role == "analyst" and identity.name not in settings.allowed_analysts:
        raise PermissionDenied(
            f"analyst {identity.name!r} is not in this node's allowed_analysts: ask the "
            "node's operator to add them to node.toml"
        )
    return peer
