"""`npcs ca`: run the partnership certificate authority (init, sign CSRs, list, revoke)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cryptography import x509

ROLE_CHOICE = click.Choice(["node", "analyst", "auditor"])
PERSON_ROLE_CHOICE = click.Choice(["analyst", "auditor"])


@click.group("ca")
def command() -> None:
    """Run the partnership certificate authority.

    \b
      npcs ca init CA_DIR --partnership P                  # once, by the operator
      npcs ca sign CA_DIR node.csr --role node --name N --out node.crt
      npcs ca sign CA_DIR alice.csr --role analyst --name alice \
          --signing-key alice-signing.pub --out alice.crt  # CSR from `npcs identity init`
      npcs ca list CA_DIR                                  # what this CA issued
      npcs ca revoke CA_DIR SHA256_OR_CERT_FILE            # publishes CA_DIR/crl.pem
      npcs ca issue CA_DIR --role analyst --name alice --out alice/   # DEMO ONLY
    """


@command.command("init")
@click.argument("ca_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--partnership", required=True, help="Partnership name written into every cert.")
def init(ca_dir: Path, partnership: str) -> None:
    """Create the CA key (0600) and a self-signed 10-year CA certificate in CA_DIR."""
    # Imported when the command runs, so `--help` never loads cryptography.
    from coordinator import ca
    from kernel.identity import IdentityError
    from kernel.keyfiles import KeyFileError

    try:
        paths = ca.init_ca(ca_dir, partnership)
    except (IdentityError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created the {partnership} partnership CA in {ca_dir}:")
    click.echo(f"  {paths.key}   CA private key (0600): keep it here, back it up offline")
    click.echo(f"  {paths.cert}   CA certificate: give it to every node and person")
    click.echo(f"  {paths.settings}")


@command.command("sign")
@click.argument("ca_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("csr", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--role", type=ROLE_CHOICE, required=True, help="Role the certificate grants.")
@click.option("--name", required=True, help="Member name (node name or person's name).")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the certificate (PEM).",
)
@click.option(
    "--signing-key",
    "signing_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ed25519 public key (PEM) to bind as the holder's request-signing key.",
)
@click.option("--dns", "dns_names", multiple=True, help="Extra DNS name (node role; repeatable).")
@click.option("--ip", "ip_addresses", multiple=True, help="Extra IP address (node; repeatable).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def sign(  # noqa: PLR0917  (click passes each option as a parameter)
    ca_dir: Path,
    csr: Path,
    role: str,
    name: str,
    out: Path,
    signing_key: Path | None,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    output_format: str,
) -> None:
    """Sign a member's CSR, naming them npcs://PARTNERSHIP/ROLE/NAME (valid 1 year)."""
    # Imported when the command runs, so `--help` never loads cryptography.
    from coordinator import ca
    from coordinator.ca_registry import record_issued
    from kernel import identity, keyfiles

    try:
        authority = ca.CertificateAuthority.load(ca_dir)
        keyfiles.refuse_existing([out])
        public_key = (
            keyfiles.load_ed25519_public_key(signing_key, "signing key")
            if signing_key is not None
            else None
        )
        issued = authority.sign_csr(
            ca.load_csr(csr),
            role=identity.check_role(role),
            name=name,
            dns_names=dns_names,
            ip_addresses=keyfiles.parse_ip_addresses(ip_addresses),
            signing_key=public_key,
        )
        keyfiles.write_public_file(out, keyfiles.certificate_pem(issued.certificate))
        record_issued(ca_dir, issued.certificate)
    except (ca.CaError, identity.IdentityError, keyfiles.KeyFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    summary = _certificate_summary(issued.certificate)
    if output_format == "json":
        click.echo(json.dumps({**summary, "certificate": str(out)}, indent=2))
        return
    click.echo(f"Signed {issued.identity} -> {out}")
    click.echo(f"  sha256 {issued.fingerprint}")
    click.echo(f"  valid until {summary['not_valid_after']}")
    if role == "node":
        click.echo(
            f"Send {out} and {ca.CaPaths(ca_dir).cert} to the node operator, who runs:\n"
            f"  npcs-node install-cert NODE_DIR {out.name} --ca ca.crt"
        )


@command.command("issue")
@click.argument("ca_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--role", type=PERSON_ROLE_CHOICE, required=True, help="analyst or auditor.")
@click.option("--name", required=True, help="The person's member name.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the person's keys and certificates (created if missing).",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def issue(ca_dir: Path, role: str, name: str, out_dir: Path, output_format: str) -> None:
    """DEMO ONLY: make a person's keys here at the CA, and their certificate.

    The CA then holds, for a moment, a person's private keys. Outside a demo, people
    make their own keys and CSR with `npcs identity init` and the CA signs the CSR with
    `npcs ca sign`, so no person's private key is ever made by the CA.
    """
    # Imported when the command runs, so `--help` never loads cryptography.
    from coordinator import ca
    from coordinator.ca_registry import record_issued
    from kernel import identity, keyfiles

    try:
        authority = ca.CertificateAuthority.load(ca_dir)
        issued = ca.issue_person_credentials(
            authority, role=identity.check_role(role), name=name, out_dir=out_dir
        )
        record_issued(ca_dir, issued.certificate)
    except (ca.CaError, identity.IdentityError, keyfiles.KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    if output_format == "json":
        click.echo(
            json.dumps(
                {
                    "identity": issued.identity.uri,
                    "sha256": issued.fingerprint,
                    "signing_key_sha256": issued.signing_key_fingerprint,
                    "files": [str(path) for path in issued.written],
                },
                indent=2,
            )
        )
        return
    paths = ca.CredentialPaths(out_dir)
    click.echo(f"Issued {issued.identity} in {out_dir}:")
    click.echo(f"  {paths.tls_key}   TLS private key (0600)")
    click.echo(f"  {paths.tls_cert}   certificate, sha256 {issued.fingerprint}")
    click.echo(f"  {paths.ca_cert}   partnership CA certificate")
    click.echo(f"  {paths.signing_key}   request-signing key (Ed25519, 0600)")
    click.echo(f"  {paths.signing_public_key}   its public half, bound into the certificate")
    click.echo("Hand the folder to its owner over a trusted channel; keep no copy of the keys.")
    click.echo(
        "DEMO ONLY: the CA made this person's private keys. For real members use "
        "`npcs identity init` (their keys never leave their machine) and `npcs ca sign`."
    )


@command.command("list")
@click.argument("ca_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def list_issued(ca_dir: Path, output_format: str) -> None:
    """List every certificate this CA issued: identity, sha256, expiry, status."""
    import datetime
    from dataclasses import asdict

    from coordinator import ca
    from coordinator.ca_registry import load_registry

    try:
        registry = load_registry(ca_dir)
    except ca.CaError as exc:
        raise click.ClickException(str(exc)) from exc
    now = datetime.datetime.now(datetime.UTC)
    if output_format == "json":
        rows = [{**asdict(r), "status": r.status(now)} for r in registry.records]
        click.echo(json.dumps({"crl_number": registry.crl_number, "certificates": rows}, indent=2))
        return
    if not registry.records:
        click.echo(f"{ca_dir}: no certificate issued yet (or issued before the registry existed)")
    for record in registry.records:
        click.echo(
            f"{record.status(now):8} {record.identity}  sha256 {record.sha256}  "
            f"until {record.not_after}"
        )


@command.command("revoke")
@click.argument("ca_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("which", metavar="SHA256_OR_CERT_FILE")
@click.option("--reason", default="unspecified", show_default=True, help="Kept in the registry.")
def revoke(ca_dir: Path, which: str, reason: str) -> None:
    """Revoke a certificate (by its SHA-256 or its file) and publish CA_DIR/crl.pem.

    Copy crl.pem to every node, to the path in its node.toml's `crl_file`: running
    nodes re-read it within a second and refuse the certificate, with no restart.
    """
    from coordinator import ca
    from coordinator.ca_registry import revoke as revoke_certificate
    from kernel import identity, keyfiles

    try:
        fingerprint = which
        if Path(which).is_file():
            certificate = keyfiles.load_certificate_file(Path(which))
            fingerprint = identity.certificate_fingerprint(certificate)
        record, crl = revoke_certificate(ca_dir, fingerprint, reason)
    except (ca.CaError, identity.IdentityError, keyfiles.KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Revoked {record.identity} (sha256 {record.sha256}, serial {record.serial}).")
    click.echo(f"Published {crl}: copy it to every node's `crl_file` (see node.toml).")


def _certificate_summary(certificate: x509.Certificate) -> dict[str, str | list[str]]:
    """Human/JSON summary of a member certificate."""
    from kernel import identity

    return {
        "identity": identity.identity_from_certificate(certificate).uri,
        "uri_sans": identity.uri_sans(certificate),
        "sha256": identity.certificate_fingerprint(certificate),
        "not_valid_before": certificate.not_valid_before_utc.isoformat(),
        "not_valid_after": certificate.not_valid_after_utc.isoformat(),
    }
