"""`npcs-node init`: create a node folder with its keys, CSR and settings."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("node_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="This node's name in the partnership.")
@click.option("--partnership", required=True, help="The partnership's name (as its CA uses).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=50051, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--dns",
    "dns_names",
    multiple=True,
    metavar="NAME",
    help="A DNS name clients reach this node by, for its certificate (repeatable; "
    "localhost is always included).",
)
@click.option(
    "--ip",
    "ip_addresses",
    multiple=True,
    metavar="ADDR",
    help="An IP address clients reach this node by, for its certificate (repeatable; "
    "127.0.0.1 is always included).",
)
def command(  # noqa: PLR0917 - click passes every option as an argument
    node_dir: Path,
    name: str,
    partnership: str,
    host: str,
    port: int,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
) -> None:
    """Create NODE_DIR: node.toml, TLS key + CSR, ledger key, data/ and ledger/."""
    # Imported when the command runs, so `--help` never loads cryptography.
    from kernel.identity import Identity, IdentityError
    from kernel.keyfiles import KeyFileError
    from node import provision

    try:
        identity = Identity(partnership=partnership, role="node", name=name)
        paths = provision.init_node_folder(
            node_dir,
            name=name,
            partnership=partnership,
            host=host,
            port=port,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
        )
    except (provision.ProvisionError, IdentityError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(provision.next_steps(paths, identity))
