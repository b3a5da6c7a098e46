"""`npcs identity init`: an analyst or auditor makes their own keys and a CSR."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("identity")
def command() -> None:
    """Your own partnership identity: keys that stay with you, and a CSR for the CA."""


@command.command("init")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--partnership", required=True, help="The partnership's name (as the CA uses it).")
@click.option("--role", type=click.Choice(["analyst", "auditor"]), required=True)
@click.option("--name", required=True, help="Your member name, e.g. alice.")
def init(out_dir: Path, partnership: str, role: str, name: str) -> None:
    """Make your TLS and request-signing keys (0600) and a CSR in DIR."""
    from coordinator.ca import CaError
    from coordinator.identity_request import init_person_identity
    from kernel.identity import IdentityError, check_role
    from kernel.keyfiles import KeyFileError

    try:
        request = init_person_identity(
            out_dir, partnership=partnership, role=check_role(role), name=name
        )
    except (CaError, IdentityError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    folder = request.folder
    click.echo(f"Made the keys of {request.identity} in {out_dir}:")
    click.echo(f"  {folder.tls_key}   TLS private key (0600): never send it anywhere")
    click.echo(f"  {folder.signing_key}   request-signing key (0600): never send it anywhere")
    click.echo(
        f"  {folder.signing_public_key}   its public half, sha256 {request.signing_key_fingerprint}"
    )
    click.echo(f"  {request.csr}   certificate signing request")
    click.echo(
        f"Send {request.csr.name} and {folder.signing_public_key.name} to the CA operator, "
        "and tell them the signing key's sha256 above by another channel. They run:\n"
        f"  npcs ca sign CA_DIR {request.csr.name} --role {role} --name {name} "
        f"--signing-key {folder.signing_public_key.name} --out tls.crt\n"
        f"Put the tls.crt and ca.crt they send back into {out_dir}."
    )
