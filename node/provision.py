"""Setting up a node folder: keys, CSR and settings (`init`), then its certificate.

The node's private keys are made here and never leave `keys/`; the partnership CA
only ever sees the CSR. `install_certificate` checks a certificate from the CA really
belongs to this node before the node will serve with it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kernel.files import PRIVATE_FILE_MODE, create_exclusive
from kernel.identity import (
    Identity,
    IdentityError,
    certificate_fingerprint,
    identity_from_certificate,
)
from kernel.issuer import CertificateIssuerError, check_issued_by
from kernel.keyfiles import (
    IPAddress,
    build_csr,
    certificate_pem,
    generate_ed25519_key,
    generate_tls_key,
    load_certificate_file,
    load_ec_private_key,
    parse_ip_addresses,
    private_key_pem,
    public_key_pem,
    write_private_file,
    write_public_file,
)
from node.layout import NodePaths
from node.permissions import make_private_dir
from node.settings import BudgetSettings, NodeSettings, ServerLimits, load_settings

DEFAULT_DNS_NAMES = ("localhost",)
DEFAULT_IP_ADDRESSES = ("127.0.0.1",)


class ProvisionError(Exception):
    """A node set-up step refused, with a message saying what to do."""


def init_node_folder(
    root: Path,
    *,
    name: str,
    partnership: str,
    host: str = "127.0.0.1",
    port: int = 50051,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> NodePaths:
    """Create a node folder: node.toml, TLS key + CSR, Ed25519 ledger key, data/ and ledger/.

    The CSR names localhost and 127.0.0.1 plus `dns_names` and `ip_addresses`: the names
    analysts and auditors will dial this node by (their TLS checks the name).
    """
    identity = Identity(partnership=partnership, role="node", name=name)
    dns, addresses = csr_host_names(dns_names, ip_addresses)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ProvisionError(
            f"{root} already exists and is not an empty folder: choose a new folder "
            "(init never overwrites a node's keys or data)"
        )
    paths = NodePaths(root)
    for folder in (root, paths.keys_dir, paths.data_dir, paths.ledger_dir):
        make_private_dir(folder)

    tls_key = generate_tls_key()
    write_private_file(paths.tls_key, private_key_pem(tls_key))
    csr = build_csr(tls_key, identity, dns_names=dns, ip_addresses=addresses)
    write_public_file(paths.tls_csr, csr.public_bytes(serialization.Encoding.PEM))

    ledger_key = generate_ed25519_key()
    write_private_file(paths.ledger_key, private_key_pem(ledger_key))
    write_public_file(paths.ledger_public_key, public_key_pem(ledger_key.public_key()))

    settings = node_toml(name=name, partnership=partnership, host=host, port=port)
    create_exclusive(paths.settings_file, settings.encode("utf-8"), mode=PRIVATE_FILE_MODE)
    return paths


def csr_host_names(
    dns_names: Sequence[str], ip_addresses: Sequence[str]
) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """The defaults plus the extra names, without repeats; refuses malformed ones."""
    dns = tuple(dict.fromkeys([*DEFAULT_DNS_NAMES, *(name.strip() for name in dns_names)]))
    for name in dns:
        if not _DNS_NAME.fullmatch(name):
            raise ProvisionError(
                f"--dns {name!r} is not a DNS host name (letters, digits, '-' and '.', "
                "e.g. node.county-a.example.org); pass IP addresses with --ip"
            )
    try:
        addresses = parse_ip_addresses([*DEFAULT_IP_ADDRESSES, *ip_addresses])
    except ValueError as exc:
        raise ProvisionError(f"--ip: {exc} (e.g. 192.0.2.5 or 2001:db8::5)") from exc
    return dns, tuple(dict.fromkeys(addresses))


_DNS_NAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def csr_names(paths: NodePaths) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses this node's CSR asks for."""
    csr = x509.load_pem_x509_csr(paths.tls_csr.read_bytes())
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return (
        list(sans.get_values_for_type(x509.DNSName)),
        [str(address) for address in sans.get_values_for_type(x509.IPAddress)],
    )


def _toml(value: object) -> str:
    """One TOML value as tomlkit writes it (strings escaped, lists inline)."""
    return tomlkit.item(value).as_string()


def node_toml(*, name: str, partnership: str, host: str, port: int) -> str:
    """A commented node.toml holding NodeSettings' defaults, for operators to edit.

    The comments are a fixed template; every value in it is written by tomlkit.
    """
    defaults = NodeSettings(name=name, partnership=partnership, host=host, port=port)
    budget: BudgetSettings = defaults.budget
    limits: ServerLimits = defaults.server
    per_unit_kind = tomlkit.dumps(budget.unit_kind_totals()).rstrip("\n")
    return f"""\
# npcs-federation node settings (written by `npcs-node init`).
# Every value can be overridden by an environment variable NPCS_NODE_<NAME>
# (nested with "__", e.g. NPCS_NODE_BUDGET__MAX_RHO_PER_QUERY).

# This node's name and partnership: its certificate must name npcs://{partnership}/node/{name}
name = {_toml(name)}
partnership = {_toml(partnership)}

# Where `npcs-node serve` listens (mTLS only).
host = {_toml(host)}
port = {_toml(port)}

# Analyst names (from their certificates) allowed to query. Empty: nobody may query yet.
allowed_analysts = {_toml(defaults.allowed_analysts)}

# Datasets this node answers questions about.
allowed_datasets = {_toml(defaults.allowed_datasets)}

# SHA-256 fingerprints (hex) of certificates that must be refused even though the CA signed
# them (lost laptops, people who left). `openssl x509 -noout -fingerprint -sha256` format is ok.
revoked_fingerprints = {_toml(defaults.revoked_fingerprints)}

# Public county codes: the domain of the `county` column (public knowledge, not data).
counties = {_toml(defaults.counties)}

# Optional small-count suppression: flag released noisy counts below this number as
# "suppressed" (shown as such to analysts). Post-processing of the noisy value: it never
# changes the privacy cost, and the value stays in the release. E.g. 11. Off when absent.
# suppress_counts_below = 11

# How answers are computed: "fast" (exact aggregate in Polars, OpenDP's noise; only on
# snapshots ingest verified within the contribution bounds) or "opendp" (OpenDP's whole
# plan, always). Same privacy cost either way (docs/privacy-model.md section 2.1).
query_route = {_toml(defaults.query_route.value)}

# Privacy budget policy, in rho of zero-concentrated DP. Decimal strings, handled exactly.
[budget]
# Largest rho one query may spend.
max_rho_per_query = {_toml(budget.max_rho_per_query)}
# Partnership delta for reporting (epsilon, delta) equivalents.
delta = {_toml(budget.delta)}

# Total rho one person may ever lose at this node, per kind of person: a child (every
# dataset about children: incidents, reports) and a staff member (workforce,
# workforce_years, safety_culture). Queries on all datasets of a kind share its budget.
# Spent budget never comes back.
[budget.total_rho_per_unit_kind]
{per_unit_kind}

# Optional per-analyst cap on total rho across datasets, e.g. alice = "2".
[budget.analyst_caps]

# gRPC server limits.
[server]
# Threads answering calls.
max_workers = {_toml(limits.max_workers)}
# Calls in progress at once; more are refused with RESOURCE_EXHAUSTED.
max_concurrent_rpcs = {_toml(limits.max_concurrent_rpcs)}
# Seconds in-flight calls get to finish when the node stops (`serve --grace` overrides).
grace_seconds = {_toml(limits.grace_seconds)}

# How `npcs-node ingest` and `npcs-node refresh` treat rows that fail validation.
[ingest]
# Largest share of rows (0 to 1) that may be rejected while the valid rows still become the
# new snapshot; above it the current snapshot stays and the command fails. "0": any rejected
# row keeps the current snapshot. E.g. "0.001" tolerates one bad row in a thousand.
max_rejected_fraction = "0"

# Optional Prometheus endpoint (plain HTTP on 127.0.0.1 unless host is set): budget,
# queries by status, latency, ledger size, snapshot age, certificate expiry. Off when
# port is absent.
[metrics]
# port = 9464
# host = "127.0.0.1"

# Public child population by year (e.g. census estimates), used for rates, e.g. "2023" = 412000.
[child_population]
"""


def next_steps(paths: NodePaths, identity: Identity) -> str:
    dns, addresses = csr_names(paths)
    extra = [f"--dns {name}" for name in dns if name not in DEFAULT_DNS_NAMES]
    extra += [f"--ip {address}" for address in addresses if address not in DEFAULT_IP_ADDRESSES]
    sign = f"npcs ca sign CA_DIR tls.csr --role node --name {identity.name}"
    sign += "".join(f" {option}" for option in extra) + f" --out {identity.name}.crt"
    names = ", ".join([*dns, *addresses])
    hint = (
        ""
        if extra
        else ": only this machine can.\nFor other machines, create the node folder with "
        "`npcs-node init --dns NAME --ip ADDR` naming its real host"
    )
    return f"""\
Created node {identity} in {paths.root}.
Its certificate request names the hosts: {names}
Analysts and auditors must reach the node by one of them{hint}.
Next steps:
  1. Send {paths.tls_csr} to the partnership CA operator, who runs:
       {sign}
  2. Install the certificate they send back, with the partnership's CA certificate:
       npcs-node install-cert {paths.root} {identity.name}.crt --ca ca.crt
  3. Hand {paths.ledger_public_key} to the partnership: auditors check your ledger with it.
  4. Review {paths.settings_file} (allowed_analysts is empty: nobody may query yet).
Private keys in {paths.keys_dir} (tls.key, ledger.key) must never leave this machine."""


@dataclass(frozen=True)
class InstalledCertificate:
    identity: Identity
    fingerprint: str
    not_valid_after: datetime.datetime


def install_certificate(
    root: Path, certificate_path: Path, ca_path: Path, now: datetime.datetime | None = None
) -> InstalledCertificate:
    """Check a CA-issued certificate belongs to this node, then copy it and the CA cert in."""
    paths = NodePaths(root)
    settings = load_settings(root)
    certificate = load_certificate_file(certificate_path, "certificate")
    ca_certificate = load_certificate_file(ca_path, "CA certificate")
    tls_key = load_ec_private_key(paths.tls_key, "node TLS key")

    _check_key_matches(certificate, tls_key.public_key().public_bytes(*_SPKI), paths.tls_key)
    expected = Identity(partnership=settings.partnership, role="node", name=settings.name)
    _check_names_node(certificate, expected)
    _check_signed_by(certificate, ca_certificate, ca_path)
    _check_valid_now(certificate, now or datetime.datetime.now(datetime.UTC))
    _check_server_usage(certificate)
    _check_host_names(certificate, paths)

    write_public_file(paths.tls_cert, certificate_pem(certificate), overwrite=True)
    write_public_file(paths.ca_cert, certificate_pem(ca_certificate), overwrite=True)
    return InstalledCertificate(
        identity=expected,
        fingerprint=certificate_fingerprint(certificate),
        not_valid_after=certificate.not_valid_after_utc,
    )


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_key_matches(certificate: x509.Certificate, key_spki: bytes, key_path: Path) -> None:
    if certificate.public_key().public_bytes(*_SPKI) != key_spki:
        raise ProvisionError(
            f"this certificate is not for this node's key {key_path}: it was made from "
            "another CSR. Ask the CA operator to sign this node's keys/tls.csr"
        )


def _check_names_node(certificate: x509.Certificate, expected: Identity) -> None:
    try:
        named = identity_from_certificate(certificate)
    except IdentityError as exc:
        raise ProvisionError(str(exc)) from exc
    if named != expected:
        raise ProvisionError(
            f"the certificate names {named}, but this node is {expected} (from node.toml): "
            f"ask the CA operator to sign it with --role node --name {expected.name}"
        )


def _check_signed_by(
    certificate: x509.Certificate, ca_certificate: x509.Certificate, ca_path: Path
) -> None:
    try:
        check_issued_by(certificate, ca_certificate, ca_path)
    except CertificateIssuerError as exc:
        raise ProvisionError(str(exc)) from exc


def _check_valid_now(certificate: x509.Certificate, now: datetime.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise ProvisionError(
            f"the certificate is not valid until {certificate.not_valid_before_utc.isoformat()}:"
            " check this machine's clock"
        )
    if now > certificate.not_valid_after_utc:
        raise ProvisionError(
            f"the certificate expired on {certificate.not_valid_after_utc.isoformat()}: ask "
            "the CA operator to sign keys/tls.csr again"
        )


def _check_host_names(certificate: x509.Certificate, paths: NodePaths) -> None:
    """Every host name the CSR asked for must be in the certificate: clients dialling
    the node by a missing name would fail their TLS name check."""
    if not paths.tls_csr.is_file():
        return
    wanted_dns, wanted_ips = csr_names(paths)
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have_dns = set(sans.get_values_for_type(x509.DNSName))
        have_ips = {str(address) for address in sans.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        have_dns, have_ips = set(), set()
    missing = [f"--dns {name}" for name in wanted_dns if name not in have_dns]
    missing += [f"--ip {address}" for address in wanted_ips if address not in have_ips]
    if missing:
        raise ProvisionError(
            "the certificate lacks host names this node's CSR asked for, so clients "
            "dialling them would be refused: ask the CA operator to sign keys/tls.csr again "
            f"with {' '.join(missing)}"
        )


def _check_server_usage(certificate: x509.Certificate) -> None:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        raise ProvisionError(
            "the certificate does not allow TLS server use (extendedKeyUsage serverAuth): "
            "sign the CSR with `npcs ca sign --role node`"
        )
