"""`npcs audit`: verify every node's privacy-budget ledger as the partnership's auditor.

Exit codes: 0 every audited ledger checks out; 5 at least one node FAILED (evidence of
a broken or tampered ledger; its problems are listed); 3 no node failed but some could
not be reached (UNREACHABLE: not audited, spending unknown); 1 usage or set-up errors.
"""

from __future__ import annotations

from pathlib import Path

import click

from coordinator.cli.errors import user_errors

EXIT_AUDIT_FAILED = 5
EXIT_UNREACHABLE = 3


@click.command("audit")
@click.option("--nodes", help="Comma-separated node names (default: every node).")
@click.option(
    "--identity",
    "identity_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Auditor credentials folder (from `npcs ca issue --role auditor`), instead of "
    "the identity in partnership.toml.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the audit report here (.json: JSON, otherwise markdown).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Remembered checkpoints store, SQLite (default: audit_checkpoints.sqlite in the npcs "
    "data directory, $NPCS_DATA_DIR; an audit_checkpoints.json beside it from earlier "
    "versions is imported once).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per call.")
@click.option(
    "--accept-reset",
    "accept_resets",
    metavar="NODE",
    multiple=True,
    help="Accept NODE's new ledger after a recorded `npcs-node ledger reset`: only when "
    "its genesis entry names exactly the checkpoint remembered for NODE (origin, size, "
    "root, signed by its pinned key; or a later one that --archived-ledger bridges) and "
    "the new ledger passes the audit, that checkpoint "
    "is replaced by the new ledger's; otherwise NODE fails and nothing is replaced.",
)
@click.option(
    "--archived-ledger",
    "archived_ledger",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With one --accept-reset NODE: a copy of the ledger `npcs-node ledger reset` "
    "archived (NODE's ledger/archive/ledger-*.sqlite, from its operator), for when the "
    "genesis entry names a later checkpoint than the remembered one (queries answered "
    "after your last audit). It must verify in full with NODE's pinned ledger key, hold "
    "the named checkpoint and extend the remembered one; its spending is audited and "
    "reported as spent before the reset.",
)
@click.option("--config", envvar="NPCS_CONFIG", type=click.Path(path_type=Path))
@user_errors()
def command(  # noqa: PLR0917 - click passes every option as an argument
    nodes: str | None,
    identity_dir: Path | None,
    output_format: str,
    out: Path | None,
    state_file: Path | None,
    timeout: float,
    accept_resets: tuple[str, ...],
    archived_ledger: Path | None,
    config: Path | None,
) -> None:
    """Check each node's ledger: signatures, Merkle root, history, charges and totals.

    \b
    Remembers each passing node's signed checkpoint, so the next audit proves its
    ledger only grew (no entry removed or rewritten since).
    \b
    Examples:
      npcs audit --identity ~/npcs/auditor --out audit.md
      npcs audit --nodes state-a,county-b --format json
      npcs audit --accept-reset county-b --out audit.md
      npcs audit --accept-reset county-b --archived-ledger ledger-2026.sqlite
    """
    from coordinator.audit.render import report_json, summary_lines, write_report
    from coordinator.audit.session import open_audit_session
    from privacy.text import printable

    report = open_audit_session(
        config=config,
        identity_dir=identity_dir,
        nodes=nodes,
        state_file=state_file,
        timeout=timeout,
        accept_resets=accept_resets,
        archived_ledger=archived_ledger,
    ).audit()
    if out is not None:
        write_report(report, out)
    if output_format == "json":
        click.echo(report_json(report), nl=False)
    else:
        for line in summary_lines(report):
            click.echo(printable(line))  # node-supplied text never acts on the terminal
        if out is not None:
            click.echo(f"Report written to {out}")
    if report.failed_nodes:
        raise SystemExit(EXIT_AUDIT_FAILED)
    if report.unreachable_nodes:
        raise SystemExit(EXIT_UNREACHABLE)
