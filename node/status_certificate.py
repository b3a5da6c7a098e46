"""The certificate part of `npcs-node status`: when the node's TLS certificate expires.

Warns from `EXPIRY_WARNING_DAYS` before expiry, so IT renews (`npcs-node init` keeps the
key; get the CSR signed again and `npcs-node install-cert`) before partners are refused.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from kernel.identity import certificate_fingerprint
from kernel.keyfiles import KeyFileError, load_certificate_file
from node.layout import NodePaths

EXPIRY_WARNING_DAYS = 30


def gather_certificate_status(
    paths: NodePaths, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """The node certificate's validity and days to expiry, with a warning when due."""
    if not paths.tls_cert.is_file():
        return {
            "installed": False,
            "warning": "no certificate installed yet: get keys/tls.csr signed and run "
            "`npcs-node install-cert`",
        }
    try:
        certificate = load_certificate_file(paths.tls_cert, "node certificate")
    except KeyFileError as exc:
        return {"installed": True, "error": str(exc)}
    moment = now or datetime.datetime.now(datetime.UTC)
    not_after = certificate.not_valid_after_utc
    days = (not_after - moment).total_seconds() / 86400
    return {
        "installed": True,
        "fingerprint": certificate_fingerprint(certificate),
        "not_after": not_after.isoformat(),
        "days_to_expiry": math.floor(days),
        "warning": expiry_warning(days),
    }


def expiry_warning(days_left: float) -> str | None:
    """What IT must do about a certificate with `days_left` of validity, or None."""
    if days_left < 0:
        return (
            "the node certificate HAS EXPIRED: partners refuse the node; renew it now "
            "(`npcs ca sign` the CSR, then `npcs-node install-cert`)"
        )
    if days_left < EXPIRY_WARNING_DAYS:
        return (
            f"the node certificate expires in {math.floor(days_left)} days: renew it "
            "(`npcs ca sign` the CSR, then `npcs-node install-cert`) before partners "
            "refuse the node"
        )
    return None


def format_certificate_status(certificate: dict[str, Any]) -> str:
    if "error" in certificate:
        return f"\ncertificate: ERROR: {certificate['error']}"
    if not certificate["installed"]:
        return f"\ncertificate: none. WARNING: {certificate['warning']}"
    line = (
        f"\ncertificate: valid until {certificate['not_after']} "
        f"({certificate['days_to_expiry']} days), sha256 {certificate['fingerprint']}"
    )
    if certificate["warning"]:
        line += f"\nWARNING: {certificate['warning']}"
    return line
