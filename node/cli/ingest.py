"""`npcs-node ingest DIR DATASET FILE`: validate a CSV/Parquet export into a new snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kernel.clikit import text_or_json_option

if TYPE_CHECKING:
    from node.ingest_result import IngestResult


@click.command("ingest")
@click.argument("node_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.argument("dataset")
@click.argument("source", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@text_or_json_option
@click.option(
    "--check",
    is_flag=True,
    help="Validate and write the reject report only; change no snapshot.",
)
def command(node_dir: Path, dataset: str, source: Path, output_format: str, check: bool) -> None:
    """Validate FILE (CSV or Parquet) and make it DATASET's current snapshot.

    Every row is checked against the partnership schema (types, public domains, bounds,
    dates, missing values, the contribution bound per privacy unit). Rows that fail go
    to a reject report under DIR/rejects/. If more rows fail than node.toml's
    ingest.max_rejected_fraction allows (default 0: none), or nothing valid remains, the
    current snapshot stays as it is and the command fails; otherwise the valid rows
    become a new immutable snapshot.
    """
    result = ingest_file(node_dir, dataset, source, check_only=check)
    if output_format == "json":
        click.echo(json.dumps(result_as_dict(result), indent=2))
    else:
        _echo_text(dataset, source, result)
    fail_unless_stored(result, "ingest")


def fail_unless_stored(result: IngestResult, command_name: str) -> None:
    """Exit non-zero when the rows were not (or, under --check, would not be) stored."""
    if result.problem is not None:
        report = f" Reject report: {result.reject_report}." if result.reject_report else ""
        raise click.ClickException(f"{result.problem}{report} Then run {command_name} again.")


def ingest_file(
    node_dir: Path, dataset: str, source: Path, *, check_only: bool = False
) -> IngestResult:
    """Load settings, validate and store, showing a spinner on stderr; user errors -> CLI."""
    from rich.console import Console

    from node.ingest import IngestError
    from node.layout import NodePaths
    from node.settings import load_settings
    from node.store import DataStore, node_schema

    settings = load_settings(node_dir)
    store = DataStore(NodePaths(node_dir), node_schema(settings))
    with Console(stderr=True).status(f"Validating {source.name} as {dataset}..."):
        try:
            return store.ingest(
                dataset, source, threshold=settings.ingest.threshold(), check_only=check_only
            )
        except IngestError as error:
            raise click.ClickException(str(error)) from None


def result_as_dict(result: IngestResult) -> dict[str, object]:
    snapshot = result.snapshot
    return {
        "snapshot_id": snapshot.snapshot_id if snapshot else None,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "truncated": result.truncated,
        "reject_report": str(result.reject_report) if result.reject_report else None,
        "problem": result.problem,
        "derived": {
            derived.dataset: {"snapshot_id": derived.snapshot_id, "rows": derived.rows}
            for derived in result.derived
        },
        "checked_only": result.checked_only,
    }


def _echo_text(dataset: str, source: Path, result: IngestResult) -> None:
    if result.checked_only and result.problem is None:
        click.echo(
            f"{dataset}: check passed: {result.accepted} valid rows, {result.rejected} "
            f"rejected in {source.name}; nothing stored (--check)."
        )
    if result.snapshot is not None:
        click.echo(
            f"{dataset}: {result.accepted} rows from {source.name} stored as snapshot "
            f"{result.snapshot.snapshot_id} (now current)."
        )
    for derived in result.derived:
        click.echo(
            f"{derived.dataset}: {derived.rows} rows derived from it, stored as snapshot "
            f"{derived.snapshot_id} (now current)."
        )
    if result.truncated:
        click.echo(
            f"{result.truncated} rows cut by the contribution bounds (each person keeps "
            "the earliest rows allowed); they are listed in the reject report."
        )
    if result.rejected and result.snapshot is not None:
        click.secho(
            f"warning: {result.rejected} rows rejected; see {result.reject_report}",
            err=True,
            fg="yellow",
        )
