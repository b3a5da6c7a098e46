"""The partnership certificate authority: one ECDSA P-256 key that signs members' CSRs.

A CA folder holds `ca.key` (0600, never leaves the folder), `ca.crt` (handed to every
member) and `ca.toml` (which partnership this CA serves). Certificates name their
holder in a URI SAN `npcs://PARTNERSHIP/ROLE/NAME`; analysts' and auditors'
certificates also bind their Ed25519 request-signing key (`npcs-signing-key:sha256:`).
"""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coordinator.partnership import IdentityFiles
from kernel.identity import (
    Identity,
    IdentityError,
    Role,
    certificate_fingerprint,
    check_name,
    is_identity_uri,
    signing_key_uri,
)
from kernel.keyfiles import (
    IPAddress,
    KeyFileError,
    build_csr,
    certificate_pem,
    generate_ed25519_key,
    generate_tls_key,
    load_certificate_file,
    load_ec_private_key,
    parse_ip_addresses,
    private_key_pem,
    public_key_pem,
    refuse_existing,
    subject_for,
    write_private_file,
    write_public_file,
)
from kernel.tomlfile import render_toml
from privacy.tlog import key_fingerprint

CA_VALIDITY = datetime.timedelta(days=3650)
MEMBER_VALIDITY = datetime.timedelta(days=365)
# Backdate a little so a member whose clock runs slightly behind can use a fresh cert.
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)
NODE_DEFAULT_DNS = ("localhost",)
NODE_DEFAULT_IPS = ("127.0.0.1",)

_T = TypeVar("_T")


class CaError(Exception):
    """A CA operation refused, with a message saying what to do."""


@dataclass(frozen=True)
class CaPaths:
    root: Path

    @property
    def key(self) -> Path:
        return self.root / "ca.key"

    @property
    def cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def settings(self) -> Path:
        return self.root / "ca.toml"


@dataclass(frozen=True)
class CredentialPaths:
    """A person's credentials folder, as `npcs ca issue` writes it (the client reads it)."""

    root: Path

    def identity_files(self) -> IdentityFiles:
        """These credentials as a partnership registry's `[identity]` section names them."""
        return IdentityFiles(
            ca_certificate=self.ca_cert,
            certificate=self.tls_cert,
            tls_key=self.tls_key,
            signing_key=self.signing_key,
        )

    @property
    def tls_key(self) -> Path:
        return self.root / "tls.key"

    @property
    def tls_cert(self) -> Path:
        return self.root / "tls.crt"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def signing_key(self) -> Path:
        """Ed25519 request-signing key (PKCS8 PEM, 0600)."""
        return self.root / "signing.key"

    @property
    def signing_public_key(self) -> Path:
        return self.root / "signing.pub"

    def all(self) -> tuple[Path, ...]:
        return (
            self.tls_key,
            self.tls_cert,
            self.ca_cert,
            self.signing_key,
            self.signing_public_key,
        )


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def init_ca(root: Path, partnership: str, now: datetime.datetime | None = None) -> CaPaths:
    """Create a CA folder: P-256 key (0600), self-signed 10-year CA cert, ca.toml."""
    check_name(partnership, "partnership")
    paths = CaPaths(root)
    refuse_existing([paths.key, paths.cert, paths.settings])
    root.mkdir(parents=True, exist_ok=True)
    issued = now or _utcnow()
    key = generate_tls_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, partnership),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{partnership} partnership CA"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(issued + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    write_private_file(paths.key, private_key_pem(key))
    write_public_file(paths.cert, certificate_pem(certificate))
    write_public_file(paths.settings, _ca_toml(partnership, certificate))
    return paths


def _ca_toml(partnership: str, certificate: x509.Certificate) -> bytes:
    values = {
        "partnership": partnership,
        "ca_certificate_sha256": certificate_fingerprint(certificate),
        "created": certificate.not_valid_before_utc.isoformat(),
    }
    header = (
        "npcs partnership certificate authority (written by `npcs ca init`).\n"
        "ca.key must never leave this folder; hand ca.crt to every member."
    )
    return render_toml(values, header=header).encode()


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    identity: Identity
    fingerprint: str
    signing_key_fingerprint: str | None = None
    written: tuple[Path, ...] = field(default=())


class CertificateAuthority:
    """A loaded CA: its key, certificate and partnership."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, partnership: str
    ) -> None:
        self.key = key
        self.certificate = certificate
        self.partnership = partnership

    @classmethod
    def load(cls, root: Path) -> CertificateAuthority:
        paths = CaPaths(root)
        if not paths.settings.exists():
            raise CaError(
                f"{paths.settings} does not exist: is {root} a CA folder? "
                "Create one with `npcs ca init CA_DIR --partnership NAME`."
            )
        try:
            settings = tomllib.loads(paths.settings.read_text(encoding="utf-8"))
            partnership = check_name(str(settings["partnership"]), "partnership")
        except (tomllib.TOMLDecodeError, KeyError, IdentityError) as exc:
            raise CaError(f"{paths.settings} is damaged: {exc}") from exc
        key = load_ec_private_key(paths.key, "CA key")
        certificate = load_certificate_file(paths.cert, "CA certificate")
        if certificate.public_key() != key.public_key():
            raise CaError(f"{paths.cert} does not belong to the key {paths.key}")
        return cls(key, certificate, partnership)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        role: Role,
        name: str,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[IPAddress] = (),
        signing_key: ed25519.Ed25519PublicKey | None = None,
        now: datetime.datetime | None = None,
    ) -> IssuedCertificate:
        """Issue a 1-year member certificate for a CSR; refuses bad or mismatching CSRs."""
        identity = Identity(partnership=self.partnership, role=role, name=name)
        public_key = _checked_csr_key(csr)
        _refuse_conflicting_csr_identity(csr, identity)
        if role != "node" and (dns_names or ip_addresses):
            raise CaError("--dns/--ip only apply to node certificates")
        san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
        bound_fingerprint = None
        if signing_key is not None:
            bound_fingerprint = key_fingerprint(signing_key)
            san.append(x509.UniformResourceIdentifier(signing_key_uri(bound_fingerprint)))
        if role == "node":
            san += [x509.DNSName(dns) for dns in _unique([*NODE_DEFAULT_DNS, *dns_names])]
            addresses = _unique([*parse_ip_addresses(NODE_DEFAULT_IPS), *ip_addresses])
            san += [x509.IPAddress(address) for address in addresses]
        certificate = self._issue(public_key, identity, san, now or _utcnow())
        return IssuedCertificate(
            certificate=certificate,
            identity=identity,
            fingerprint=certificate_fingerprint(certificate),
            signing_key_fingerprint=bound_fingerprint,
        )

    def _issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        identity: Identity,
        san: list[x509.GeneralName],
        now: datetime.datetime,
    ) -> x509.Certificate:
        not_after = min(now + MEMBER_VALIDITY, self.certificate.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject_for(identity))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )


def _checked_csr_key(csr: x509.CertificateSigningRequest) -> ec.EllipticCurvePublicKey:
    if not csr.is_signature_valid:
        raise CaError(
            "the CSR's signature does not verify: it was altered or damaged in transit; "
            "ask its owner to send it again"
        )
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != (
        "secp256r1"
    ):
        raise CaError("the CSR's key is not ECDSA P-256 (gRPC needs P-256 TLS certificates)")
    return public_key


def _refuse_conflicting_csr_identity(
    csr: x509.CertificateSigningRequest, identity: Identity
) -> None:
    """A CSR that asks for a different npcs identity is almost certainly the wrong file."""
    try:
        requested = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return
    uris = requested.value.get_values_for_type(x509.UniformResourceIdentifier)
    for uri in uris:
        if is_identity_uri(uri) and uri != identity.uri:
            raise CaError(
                f"the CSR asks for {uri} but you are signing it as {identity.uri}: check "
                "--role/--name and that this is the right CSR"
            )


def _unique(values: Sequence[_T]) -> list[_T]:
    return list(dict.fromkeys(values))


def load_csr(path: Path) -> x509.CertificateSigningRequest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read CSR {path}: {exc.strerror}") from exc
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a certificate signing request: {exc}") from exc


def issue_person_credentials(
    ca: CertificateAuthority,
    *,
    role: Role,
    name: str,
    out_dir: Path,
    now: datetime.datetime | None = None,
) -> IssuedCertificate:
    """Make a person's TLS key, Ed25519 signing key and certificate binding both, in out_dir."""
    if role == "node":
        raise CaError(
            "nodes make their own keys: run `npcs-node init` there and sign its CSR with "
            "`npcs ca sign`"
        )
    paths = CredentialPaths(out_dir)
    refuse_existing(paths.all())
    out_dir.mkdir(parents=True, exist_ok=True)
    tls_key = generate_tls_key()
    signing_key = generate_ed25519_key()
    identity = Identity(partnership=ca.partnership, role=role, name=name)
    csr = build_csr(tls_key, identity)
    issued = ca.sign_csr(csr, role=role, name=name, signing_key=signing_key.public_key(), now=now)
    write_private_file(paths.tls_key, private_key_pem(tls_key))
    write_private_file(paths.signing_key, private_key_pem(signing_key))
    write_public_file(paths.signing_public_key, public_key_pem(signing_key.public_key()))
    write_public_file(paths.tls_cert, certificate_pem(issued.certificate))
    write_public_file(paths.ca_cert, certificate_pem(ca.certificate))
    return IssuedCertificate(
        certificate=issued.certificate,
        identity=issued.identity,
        fingerprint=issued.fingerprint,
        signing_key_fingerprint=issued.signing_key_fingerprint,
        written=paths.all(),
    )
