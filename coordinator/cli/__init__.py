"""`npcs`: the analysts', auditors' and partnership operator's command line."""

from __future__ import annotations

import os

import click

from kernel.clikit import LazyGroup
from kernel.command_gc import run_command_process

COORDINATOR_COMMANDS: dict[str, str] = {
    "audit": "coordinator.cli.audit:command",
    "ca": "coordinator.cli.ca:command",
    "demo": "coordinator.cli.demo:command",
    "identity": "coordinator.cli.identity:command",
    "nodes": "coordinator.cli.nodes:command",
    "partnership": "coordinator.cli.partnership:command",
    "query": "coordinator.cli.query:command",
    "results": "coordinator.cli.results:command",
    "schema": "coordinator.cli.schema:command",
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


PYDANTIC_PLUGINS_SWITCH = "PYDANTIC_DISABLE_PLUGINS"
"""Pydantic looks for third-party plugins when it builds its first model, reading the
entry points of every installed distribution (~4 ms of every `npcs query`) for plugins
this project never uses. Set (to pydantic's "__all__") unless already set, so that an
operator who wants a plugin can still say so."""


def main() -> None:
    os.environ.setdefault(PYDANTIC_PLUGINS_SWITCH, "__all__")
    run_command_process(cli)
