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
def command(node_dir: Path, name: str, partnership: str, host: str, port: int) -> None:
    """Create NODE_DIR: node.toml, TLS key + CSR, ledger key, data/ and ledger/."""
    # Imported when the command runs, so `--help` never loads cryptography.
    from node import provision
    from npcs.identity import Identity, IdentityError, KeyFileError

    try:
        identity = Identity(partnership=partnership, role="node", name=name)
        paths = provision.init_node_folder(
            node_dir, name=name, partnership=partnership, host=host, port=port
        )
    except (provision.ProvisionError, IdentityError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(provision.next_steps(paths, identity))
