"""`npcs partnership init/add-node/show`: write and read partnership.toml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from coordinator.partnership import IdentityFiles


@click.group("partnership")
def command() -> None:
    """Create and edit partnership.toml (the nodes you query and your credentials)."""


@command.command("init")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", "partnership_name", required=True, help="The partnership's name.")
@click.option(
    "--ca",
    "ca_cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The partnership CA certificate (default: ca.crt in the identity folder).",
)
@click.option(
    "--identity",
    "identity_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Your credentials folder, as `npcs ca issue --out DIR` made it.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing FILE (its nodes are lost).")
def init_command(
    file: Path, partnership_name: str, ca_cert: Path | None, identity_dir: Path, force: bool
) -> None:
    """Create FILE for partnership NAME with the credentials in --identity."""
    from coordinator.ca import CredentialPaths
    from coordinator.partnership import (
        IdentityFiles,
        Partnership,
        PartnershipError,
        save_partnership,
    )
    from kernel.identity import IdentityError, check_name
    from kernel.keyfiles import KeyFileError

    if file.exists() and not force:
        raise click.ClickException(
            f"{file} already exists: add nodes with `npcs partnership add-node`, or pass "
            "--force to start over"
        )
    credentials = CredentialPaths(identity_dir.resolve())
    identity = IdentityFiles(
        ca_certificate=(ca_cert or credentials.ca_cert).resolve(),
        certificate=credentials.tls_cert,
        tls_key=credentials.tls_key,
        signing_key=credentials.signing_key,
    )
    try:
        check_name(partnership_name, "partnership name")
        holder = _check_identity(identity, partnership_name)
        save_partnership(Partnership(name=partnership_name, identity=identity), file)
    except (PartnershipError, IdentityError, KeyFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {file} for partnership {partnership_name!r} as {holder}")
    click.echo("next: npcs partnership add-node FILE NAME HOST:PORT --ledger-key PUBFILE")


def _check_identity(identity: IdentityFiles, partnership_name: str) -> str:
    """Load every credential once so mistakes surface now, not at the first query."""
    from coordinator.partnership import PartnershipError
    from kernel.identity import bound_signing_key_fingerprint, identity_from_certificate
    from kernel.issuer import CertificateIssuerError, check_issued_by
    from kernel.keyfiles import (
        load_certificate_file,
        load_ec_private_key,
        load_ed25519_private_key,
    )
    from privacy.tlog import key_fingerprint

    ca_certificate = load_certificate_file(identity.ca_certificate, "CA certificate")
    certificate = load_certificate_file(identity.certificate, "certificate")
    try:
        check_issued_by(certificate, ca_certificate, identity.ca_certificate)
    except CertificateIssuerError as exc:
        raise PartnershipError(f"{identity.certificate}: {exc}") from exc
    load_ec_private_key(identity.tls_key)
    signing_key = load_ed25519_private_key(identity.signing_key)
    holder = identity_from_certificate(certificate)
    if holder.partnership != partnership_name:
        raise PartnershipError(
            f"your certificate is for partnership {holder.partnership!r}, not "
            f"{partnership_name!r}: use --name {holder.partnership} or the right --identity"
        )
    if holder.role == "node":
        raise PartnershipError("a node certificate cannot query: use an analyst identity")
    bound = bound_signing_key_fingerprint(certificate)
    if bound != key_fingerprint(signing_key.public_key()):
        raise PartnershipError(
            f"{identity.signing_key} is not the signing key bound to {identity.certificate}"
        )
    return str(holder.uri)


@command.command("add-node")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("name")
@click.argument("address", metavar="HOST:PORT")
@click.option(
    "--ledger-key",
    "ledger_key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The node's Ed25519 ledger public key (PEM), obtained from its operator.",
)
@click.option("--replace", "replace_existing", is_flag=True, help="Replace a node of that name.")
def add_node_command(
    file: Path, name: str, address: str, ledger_key: Path, replace_existing: bool
) -> None:
    """Add node NAME at HOST:PORT, pinning the fingerprint of its ledger key."""
    from coordinator.partnership import (
        NodeEntry,
        PartnershipError,
        load_partnership,
        save_partnership,
    )
    from kernel.identity import IdentityError, check_name
    from kernel.keyfiles import KeyFileError, load_ed25519_public_key
    from privacy.tlog import key_fingerprint

    try:
        partnership = load_partnership(file)
        fingerprint = key_fingerprint(load_ed25519_public_key(ledger_key, "ledger key"))
        entry = NodeEntry(
            name=check_name(name, "node name"),
            address=address,
            ledger_key_fingerprint=fingerprint,
        )
        save_partnership(partnership.with_node(entry, replace_existing=replace_existing), file)
    except (PartnershipError, IdentityError, KeyFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added node {name} at {address} (ledger key sha256 {fingerprint[:16]}...)")


@command.command("show")
@click.option("--config", "config", envvar="NPCS_CONFIG", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def show_command(config: Path | None, output_format: str) -> None:
    """Print the partnership file in use."""
    from coordinator.partnership import PartnershipError, load_partnership, resolve_config_path

    path = resolve_config_path(config)
    try:
        partnership = load_partnership(path)
    except PartnershipError as exc:
        raise click.ClickException(str(exc)) from exc
    nodes = [
        {"name": n.name, "address": n.address, "ledger_key_fingerprint": n.ledger_key_fingerprint}
        for n in partnership.nodes
    ]
    if output_format == "json":
        body = {
            "file": str(path),
            "name": partnership.name,
            "identity": {k: str(v) for k, v in vars(partnership.identity).items()},
            "nodes": nodes,
        }
        click.echo(json.dumps(body, indent=2, sort_keys=True))
        return
    click.echo(f"partnership {partnership.name} ({path})")
    for node in nodes:
        click.echo(f"  {node['name']:<20} {node['address']:<24} {node['ledger_key_fingerprint']}")
