"""The TLS certificate a running node serves, replaceable without a restart.

The server's credentials come from `grpc.dynamic_ssl_server_credentials`: before each
new connection's handshake gRPC asks `fetch` whether the certificate changed. After
`npcs-node install-cert` writes a renewed certificate, SIGHUP (`RunningNode.reload`)
reads the node's key, certificate and CA certificate again; new connections then get
the new certificate, while connections already open, and the calls in flight on them,
carry on untouched. A reload that finds files that do not belong together (e.g. read
between install-cert's two writes) keeps the certificate in use and says why.
"""

from __future__ import annotations

import logging
import threading

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kernel.identity import certificate_fingerprint
from kernel.keyfiles import KeyFileError, load_certificate
from node.layout import NodePaths
from node.security import load_server_credentials

log = logging.getLogger("npcs.node.tls")

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class ServingCertificate:
    """The node's current TLS material, and a renewal waiting for the next handshake."""

    def __init__(self, paths: NodePaths) -> None:
        self._paths = paths
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        key_pem, cert_pem, ca_pem = load_server_credentials(paths)
        self._fingerprint = _checked_fingerprint(key_pem, cert_pem)
        self._initial = _configuration(key_pem, cert_pem, ca_pem)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate new connections get."""
        return self._fingerprint

    def credentials(self) -> grpc.ServerCredentials:
        # grpc-stubs omit that the fetcher may return None ("no change"), as gRPC documents.
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            self._fetch,  # type: ignore[arg-type]
            require_client_authentication=True,
        )

    def reload(self) -> bool:
        """Read the key, certificate and CA certificate again; serve them from the next
        new connection. False (and the old certificate stays) if they do not fit."""
        try:
            key_pem, cert_pem, ca_pem = load_server_credentials(self._paths)
            fingerprint = _checked_fingerprint(key_pem, cert_pem)
        except (OSError, KeyFileError, ValueError) as exc:
            log.error(
                "certificate not reloaded; the current one stays in use",
                extra={"event": "certificate_rejected", "problem": str(exc)},
            )
            return False
        with self._lock:
            self._pending = _configuration(key_pem, cert_pem, ca_pem)
            self._fingerprint = fingerprint
        log.info(
            "certificate reloaded", extra={"event": "certificate_loaded", "sha256": fingerprint}
        )
        return True

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's question before each new handshake: a new configuration, or None."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending


def _configuration(key: bytes, cert: bytes, ca: bytes) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def _checked_fingerprint(key_pem: bytes, cert_pem: bytes) -> str:
    """The certificate's SHA-256, after checking it is for this key."""
    certificate: x509.Certificate = load_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if certificate.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        raise KeyFileError("keys/tls.crt is not the certificate of keys/tls.key")
    return certificate_fingerprint(certificate)
