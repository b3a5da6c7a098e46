"""Was a certificate issued by this CA? One check for node and coordinator set-up.

A certificate's partnership name is only a claim: another CA can issue a certificate
naming the same partnership. Set-up commands therefore check the signature chain
against the partnership's CA certificate before trusting the names in it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature


class CertificateIssuerError(ValueError):
    """The certificate was not issued by the given CA (or that is not a CA)."""


def check_issued_by(
    certificate: x509.Certificate, ca_certificate: x509.Certificate, ca_path: Path
) -> None:
    """Raise CertificateIssuerError unless the CA at `ca_path` signed `certificate`."""
    try:
        constraints = ca_certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertificateIssuerError(
            f"{ca_path} is not a CA certificate: pass the partnership's ca.crt"
        )
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError) as exc:
        # ValueError: issuer name differs from the CA's subject; TypeError: odd key type.
        raise CertificateIssuerError(
            f"the certificate was not issued by the CA in {ca_path}: check you have the "
            "partnership's ca.crt and a certificate from its CA"
        ) from exc
    except InvalidSignature as exc:
        raise CertificateIssuerError(
            f"the certificate's signature does not verify with the CA in {ca_path}: it was "
            "issued by another CA (perhaps one using the same partnership name) or altered"
        ) from exc
