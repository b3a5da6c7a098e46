"""The partnership CA's revocation list (X.509 CRL), as a running node enforces it.

node.toml's `crl_file` names the CRL (`npcs ca revoke` publishes it as CA_DIR/crl.pem).
The node verifies it against the partnership CA certificate, refuses every caller whose
certificate serial it lists (`node.server.RevocationInterceptor`), and re-reads it when
the file changes (a watcher polls its size, mtime and inode every
`POLL_INTERVAL_SECONDS`) or on SIGHUP. No restart is needed.

Failing closed where it matters: a configured CRL that is missing or does not verify
stops the node from starting; a replacement that does not verify (or a file being
copied in) is ignored and the last good list stays in force, with an error logged.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from node.errors import NodeSetupError

log = logging.getLogger("npcs.node.revocation")

POLL_INTERVAL_SECONDS = 0.2


class RevocationListError(NodeSetupError):
    """The configured CRL is missing, unreadable, or not signed by the partnership CA."""


def read_crl(path: Path, ca_certificate: x509.Certificate) -> x509.CertificateRevocationList:
    """The CRL at `path`, checked to be issued and signed by the partnership CA."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RevocationListError(
            f"cannot read the revocation list {path} ({exc.strerror}); copy the CA's "
            "crl.pem there or remove `crl_file` from node.toml"
        ) from exc
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise RevocationListError(f"{path} is not an X.509 revocation list: {exc}") from exc
    public_key = ca_certificate.public_key()
    if crl.issuer != ca_certificate.subject or not (
        isinstance(public_key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public_key)
    ):
        raise RevocationListError(
            f"{path} is not signed by this node's partnership CA (keys/ca.crt); get the "
            "CRL that `npcs ca revoke` published"
        )
    return crl


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)


class RevocationList:
    """The CRL in force at one node; thread-safe, re-read when its file changes."""

    def __init__(self, path: Path, ca_certificate: x509.Certificate) -> None:
        self._path = path
        self._ca_certificate = ca_certificate
        self._lock = threading.Lock()
        self._state = _file_state(path)
        self._crl = read_crl(path, ca_certificate)
        self._log_loaded()

    @property
    def path(self) -> Path:
        return self._path

    def is_revoked(self, certificate: x509.Certificate) -> bool:
        with self._lock:
            crl = self._crl
        if certificate.issuer != crl.issuer:
            return False
        return crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None

    def reload(self) -> bool:
        """Re-read the file now (SIGHUP); keep the last good list if it does not verify."""
        state = _file_state(self._path)
        try:
            crl = read_crl(self._path, self._ca_certificate)
        except RevocationListError as exc:
            log.error(
                "revocation list not reloaded; the previous one stays in force",
                extra={"event": "crl_rejected", "path": str(self._path), "problem": str(exc)},
            )
            return False
        with self._lock:
            self._crl, self._state = crl, state
        self._log_loaded()
        return True

    def reload_if_changed(self) -> bool:
        """Re-read the file if its inode, size or mtime changed since the last read."""
        state = _file_state(self._path)
        if state is None or state == self._state:
            return False
        self._state = state  # a bad file is reported once, not on every poll
        return self.reload()

    def _log_loaded(self) -> None:
        crl = self._crl
        next_update = crl.next_update_utc
        stale = next_update is not None and next_update < datetime.datetime.now(datetime.UTC)
        log.info(
            "revocation list loaded",
            extra={
                "event": "crl_loaded",
                "path": str(self._path),
                "revoked": len(crl),
                "next_update": next_update.isoformat() if next_update else None,
            },
        )
        if stale:
            log.warning(
                "revocation list is past its next update; still enforced. The CA publishes "
                "a fresh one with each `npcs ca revoke` (repeating one is harmless)",
                extra={"event": "crl_stale", "path": str(self._path)},
            )


@contextmanager
def watching(revocations: RevocationList) -> Iterator[None]:
    """Poll the CRL file for changes on a background thread while inside."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_INTERVAL_SECONDS):
            revocations.reload_if_changed()

    thread = threading.Thread(target=poll, name="npcs-crl-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
