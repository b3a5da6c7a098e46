"""`npcs-node`: the jurisdiction's node — init, load data, serve, watch budget and ledger."""

from __future__ import annotations

import click

from kernel.clikit import LazyGroup
from node.errors import NodeSetupError

NODE_COMMANDS: dict[str, str] = {
    "init": "node.cli.init:command",
    "install-cert": "node.cli.install_cert:command",
    "ledger": "node.cli.ledger:command",
    "serve": "node.cli.serve:command",
    "synth": "node.cli.synth:command",
    "ingest": "node.cli.ingest:command",
    "status": "node.cli.status:command",
    "population": "node.cli.population:command",
}


@click.group(
    cls=LazyGroup,
    lazy_subcommands=NODE_COMMANDS,
    user_errors=(NodeSetupError,),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="npcs-federation")
def cli() -> None:
    """Run a jurisdiction's npcs-federation node.

    A node keeps the jurisdiction's case records on site and answers partnership
    queries only with differentially private aggregates, charging every answer to a
    tamper-evident privacy-budget ledger that it enforces itself.

    \b
    Typical set-up:
      npcs-node init DIR --name NAME --partnership P   # keys, settings, CSR
      npcs-node install-cert DIR CERT --ca CA_CERT      # after the CA signs the CSR
      npcs-node ingest DIR incidents incidents.csv      # load validated data
      npcs-node serve DIR                               # answer queries over mTLS
    """


def main() -> None:
    cli()
