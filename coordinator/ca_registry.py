"""The CA's registry of what it issued, and the revocation list it publishes.

`CA_DIR/registry.json` lists every certificate the CA signed (serial, SHA-256,
identity, validity) and which were revoked; `npcs ca revoke` marks one and rewrites
`CA_DIR/crl.pem`, an X.509 CRL signed by the CA key, with a CRL number one higher than
the last. Nodes load the CRL from the path in their node.toml (`crl_file`) and re-read
it when it changes, so a revocation reaches a running node without a restart.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from coordinator.ca import CaError, CertificateAuthority
from kernel.files import atomic_write_bytes, atomic_write_text
from kernel.identity import (
    certificate_fingerprint,
    check_fingerprint,
    identity_from_certificate,
)

REGISTRY_FILE = "registry.json"
CRL_FILE = "crl.pem"
CRL_VALIDITY = datetime.timedelta(days=30)
"""How long a published CRL claims to be current; each `npcs ca revoke` (repeating one
is harmless) publishes a fresh one. Nodes keep enforcing a stale CRL and log it."""


@dataclass(frozen=True)
class IssuedRecord:
    serial: str
    """Hex serial number, as `openssl x509 -serial` prints it."""
    sha256: str
    identity: str
    not_after: str
    issued_at: str
    revoked_at: str | None = None
    reason: str | None = None

    def status(self, now: datetime.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if datetime.datetime.fromisoformat(self.not_after) <= now:
            return "expired"
        return "valid"


@dataclass(frozen=True)
class Registry:
    records: tuple[IssuedRecord, ...]
    crl_number: int


def registry_path(ca_dir: Path) -> Path:
    return ca_dir / REGISTRY_FILE


def crl_path(ca_dir: Path) -> Path:
    return ca_dir / CRL_FILE


def load_registry(ca_dir: Path) -> Registry:
    path = registry_path(ca_dir)
    if not path.exists():
        return Registry((), 0)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        records = tuple(IssuedRecord(**record) for record in body["certificates"])
        return Registry(records, int(body["crl_number"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CaError(
            f"the CA registry {path} is unreadable or damaged ({exc}); restore it from the "
            "CA folder's backup"
        ) from exc


def _save(ca_dir: Path, registry: Registry) -> None:
    body: dict[str, Any] = {
        "crl_number": registry.crl_number,
        "certificates": [asdict(record) for record in registry.records],
    }
    atomic_write_text(registry_path(ca_dir), json.dumps(body, indent=2) + "\n")


def record_issued(
    ca_dir: Path, certificate: x509.Certificate, now: datetime.datetime | None = None
) -> IssuedRecord:
    """Add a certificate the CA just signed to its registry."""
    record = IssuedRecord(
        serial=format(certificate.serial_number, "X"),
        sha256=certificate_fingerprint(certificate),
        identity=identity_from_certificate(certificate).uri,
        not_after=certificate.not_valid_after_utc.isoformat(),
        issued_at=(now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds"),
    )
    registry = load_registry(ca_dir)
    _save(ca_dir, replace(registry, records=(*registry.records, record)))
    return record


def revoke(
    ca_dir: Path, fingerprint: str, reason: str, now: datetime.datetime | None = None
) -> tuple[IssuedRecord, Path]:
    """Mark the certificate with SHA-256 `fingerprint` revoked and publish a new CRL."""
    wanted = check_fingerprint(fingerprint)
    moment = now or datetime.datetime.now(datetime.UTC)
    registry = load_registry(ca_dir)
    matches = [record for record in registry.records if record.sha256 == wanted]
    if not matches:
        raise CaError(
            f"this CA's registry has no certificate with sha256 {wanted}; `npcs ca list "
            f"{ca_dir}` shows what it issued"
        )
    target = matches[0]
    if target.revoked_at is None:
        target = replace(target, revoked_at=moment.isoformat(timespec="seconds"), reason=reason)
        registry = replace(
            registry,
            records=tuple(target if r.sha256 == wanted else r for r in registry.records),
        )
    return target, publish_crl(ca_dir, registry, moment)


def publish_crl(ca_dir: Path, registry: Registry, now: datetime.datetime) -> Path:
    """Write a freshly signed CRL of every revoked certificate and the registry that
    numbers it (the registry first: a CRL number is never reused)."""
    authority = CertificateAuthority.load(ca_dir)
    registry = replace(registry, crl_number=registry.crl_number + 1)
    _save(ca_dir, registry)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(registry.crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    )
    for record in registry.records:
        if record.revoked_at is not None:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(record.serial, 16))
                .revocation_date(datetime.datetime.fromisoformat(record.revoked_at))
                .build()
            )
    crl = builder.sign(authority.key, hashes.SHA256())
    path = crl_path(ca_dir)
    atomic_write_bytes(path, crl.public_bytes(serialization.Encoding.PEM))
    return path
