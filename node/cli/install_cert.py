"""`npcs-node install-cert`: check and install the node's CA-signed TLS certificate."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("install-cert")
@click.argument("node_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ca",
    "ca_cert",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The partnership's CA certificate (ca.crt).",
)
def command(node_dir: Path, cert: Path, ca_cert: Path) -> None:
    """Check CERT is this node's, from the CA, valid now; install it and the CA cert."""
    # Imported when the command runs, so `--help` never loads cryptography.
    from kernel.keyfiles import KeyFileError
    from node import provision

    try:
        installed = provision.install_certificate(node_dir, cert, ca_cert)
    # ValueError also covers a node.toml that fails validation (pydantic).
    except (provision.ProvisionError, KeyFileError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Installed the certificate of {installed.identity} in {node_dir}/keys/.")
    click.echo(f"  sha256 {installed.fingerprint}")
    click.echo(f"  valid until {installed.not_valid_after.isoformat()}")
    click.echo(
        f"Start serving with: npcs-node serve {node_dir}\n"
        "If it is already serving, make it use the new certificate without a restart: "
        "systemctl reload npcs-node (or kill -HUP its process id)."
    )
