"""`npcs`: the analysts', auditors' and partnership operator's command line."""

from __future__ import annotations

import click

from npcs.clikit import LazyGroup

COORDINATOR_COMMANDS: dict[str, str] = {
    "audit": "coordinator.cmd_audit:command",
    "ca": "coordinator.cmd_ca:command",
    "demo": "coordinator.cmd_demo:command",
    "nodes": "coordinator.cmd_nodes:command",
    "partnership": "coordinator.cmd_partnership:command",
    "query": "coordinator.cmd_query:command",
    "results": "coordinator.cmd_results:command",
}


@click.group(
    cls=LazyGroup,
    lazy_subcommands=COORDINATOR_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="npcs-federation")
def cli() -> None:
    """Ask differentially private questions of a child-welfare partnership.

    Every answer comes from the jurisdictions' own nodes as a noisy aggregate with a
    95% interval, paid for from each node's privacy budget and recorded in its ledger.
    """


def main() -> None:
    cli()
