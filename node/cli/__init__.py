"""`npcs-node`: the jurisdiction's node — init, load data, serve, watch budget and ledger."""

from __future__ import annotations

import click

from kernel.clikit import LazyGroup
from kernel.extras import MissingExtraError, require_extra
from node.errors import NodeSetupError
from node.permissions import private_umask

NODE_COMMANDS: dict[str, str] = {
    "health": "node.cli.health:command",
    "init": "node.cli.init:command",
    "install-cert": "node.cli.install_cert:command",
    "ledger": "node.cli.ledger:command",
    "serve": "node.cli.serve:command",
    "snapshots": "node.cli.snapshots:command",
    "synth": "node.cli.synth:command",
    "ingest": "node.cli.ingest:command",
    "refresh": "node.cli.refresh:command",
    "status": "node.cli.status:command",
    "population": "node.cli.population:command",
}

# Commands that read data, plan queries or show epsilon need the `node` extra (OpenDP,
# Polars, PyArrow, NumPy); these only handle keys, certificates, the health probe or the
# public population table, and must work from a light install.
WITHOUT_NODE_EXTRA = frozenset({"init", "install-cert", "health", "population"})
NEEDS_NODE_EXTRA = frozenset(NODE_COMMANDS) - WITHOUT_NODE_EXTRA


@click.group(
    cls=LazyGroup,
    lazy_subcommands=NODE_COMMANDS,
    user_errors=(NodeSetupError,),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="npcs-federation")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run a jurisdiction's npcs-federation node.

    A node keeps the jurisdiction's case records on site and answers partnership
    queries only with differentially private aggregates, charging every answer to a
    tamper-evident privacy-budget ledger that it enforces itself.

    \b
    Typical set-up:
      npcs-node init DIR --name NAME --partnership P   # keys, settings, CSR
      npcs-node install-cert DIR CERT --ca CA_CERT      # after the CA signs the CSR
      npcs-node ingest DIR incidents incidents.csv      # load validated data
      npcs-node refresh DIR                             # or pull it from a database
      npcs-node serve DIR                               # answer queries over mTLS
    """
    command = ctx.invoked_subcommand
    if command in NEEDS_NODE_EXTRA:
        try:
            require_extra("node", needed_by=f"`npcs-node {command}`")
        except MissingExtraError as exc:
            raise click.ClickException(str(exc)) from None


def main() -> None:
    private_umask()  # whatever the caller's umask: node files are for the operator only
    cli()
