"""`npcs demo`: run a whole partnership on this machine, then shut it down.

Exit codes: 0 the demo ran and every ledger passed its audit; 1 a step failed (the
message names it; every node was stopped); 130 interrupted (every node was stopped).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kernel.extras import MissingExtraError, require_extra

EXIT_INTERRUPTED = 130


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Working folder (new or empty), kept afterwards. Default: a temporary folder.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the CA, credentials and node folders (default: only results/ is kept).",
)
@click.option(
    "--nodes",
    type=click.IntRange(1, 5),
    default=5,
    show_default=True,
    help="How many jurisdictions (spread from the largest state to the tribal nation).",
)
@click.option(
    "--scale",
    type=click.FloatRange(0.001, 1.0),
    default=1.0,
    show_default=True,
    help="Shrink every jurisdiction's population, e.g. 0.1 for a quick run.",
)
@click.option(
    "--database",
    metavar="URL",
    default=None,
    help="A PostgreSQL URL (postgresql://user@host:5432/db): one jurisdiction's data is "
    "loaded there and read back with `npcs-node refresh` (needs the `sources` extra).",
)
def command(
    workdir: Path | None, keep: bool, nodes: int, scale: float, database: str | None
) -> None:
    """Create a CA and synthetic jurisdictions, start their nodes, query, chart, audit.

    \b
    Everything runs on 127.0.0.1 with real processes: `npcs-node init/install-cert/
    synth/serve` for each jurisdiction, the coordinator for the analyst and `npcs audit`'s
    checks for the auditor. Progress goes to stderr, tables to stdout; the chart and the
    audit report are written to the working folder's results/ folder.
    """
    try:
        require_extra("demo", needed_by="`npcs demo` (it runs nodes and draws a chart here)")
        if database is not None:
            require_extra("sources", needed_by="`npcs demo --database`")
    except MissingExtraError as exc:
        raise click.ClickException(str(exc)) from exc
    from coordinator.demo.processes import DemoError
    from coordinator.demo.run import DemoOptions, run_demo

    options = DemoOptions(workdir=workdir, keep=keep, nodes=nodes, scale=scale, database=database)
    try:
        outcome = run_demo(options, sys.stdout, sys.stderr)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("interrupted: every node was stopped", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    click.echo("")
    click.echo(f"Finished in {outcome.seconds:.0f} s. Results in {outcome.workdir / 'results'}:")
    click.echo(f"  trend chart:   {outcome.chart}")
    click.echo(f"  forest chart:  {outcome.forest_chart}")
    click.echo(f"  audit report:  {outcome.audit_report} (JSON: {outcome.audit_json})")
    click.echo(f"  tables:        {outcome.tables}")
    if outcome.database_note:
        click.echo(f"Database source: {outcome.database_note}.")
    if outcome.kept:
        click.echo(
            f"The partnership is kept in {outcome.workdir}: start a node again with "
            f"`npcs-node serve {outcome.workdir / 'nodes' / 'NAME'}`, then query with "
            f"`NPCS_CONFIG={outcome.workdir / 'partnership.toml'} npcs query ...` "
            "(update the node addresses first) and audit with "
            f"`npcs audit --identity {outcome.workdir / 'auditor'}`."
        )
    else:
        click.echo("Every node was stopped; the CA, keys and node data were removed.")
