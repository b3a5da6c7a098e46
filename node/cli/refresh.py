"""`npcs-node refresh DIR [DATASET...]`: pull datasets from their database queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kernel.clikit import text_or_json_option

if TYPE_CHECKING:
    from rich.status import Status

    from node.refresh import RefreshOutcome


@click.command("refresh")
@click.argument("node_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.argument("datasets", metavar="[DATASET]...", nargs=-1)
@click.option(
    "--sources",
    "sources_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The sources file (default: DIR/sources.toml).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Read and validate, write the reject reports; change no snapshot.",
)
@text_or_json_option
def command(
    node_dir: Path,
    datasets: tuple[str, ...],
    sources_path: Path | None,
    check: bool,
    output_format: str,
) -> None:
    """Read each DATASET (default: every mapped one) from its database query and make
    the valid rows its current snapshot.

    The sources file maps each dataset to one SQL query on a database URL; the password
    comes from an environment variable or a 0600 file it names. The query's columns are
    checked against the schema before any row is read; the rows then go through the same
    validation, reject report and reject threshold as `npcs-node ingest`. A dataset whose
    database is unreachable, slow (statement_timeout_seconds) or wrong keeps its current
    snapshot, and the command exits non-zero. A running node serves the new snapshots from
    its next query on.
    """
    from node.layout import NodePaths
    from node.refresh import datasets_to_refresh, refresh_datasets
    from node.settings import load_settings
    from node.sources_file import load_sources

    settings = load_settings(node_dir)
    paths = NodePaths(node_dir)
    sources_file = sources_path or paths.sources_file
    sources = load_sources(sources_file)
    names = datasets_to_refresh(sources, datasets, _known_datasets())
    with _TerminalProgress() as progress:
        outcomes = refresh_datasets(
            paths,
            settings,
            sources,
            sources_file.parent,
            names,
            check_only=check,
            progress=progress,
        )
    if output_format == "json":
        click.echo(json.dumps([outcome_as_dict(o) for o in outcomes], indent=2))
    else:
        for outcome in outcomes:
            _echo_outcome(outcome)
    failed = [o.dataset for o in outcomes if not o.succeeded]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(outcomes)} datasets were not refreshed "
            f"({', '.join(failed)}); their current snapshots stay in use."
        )


def _known_datasets() -> tuple[str, ...]:
    """Datasets a source can feed: derived ones (node/derived.py) come with their parent."""
    from node.derived import ingested_datasets
    from privacy.schema import PARTNERSHIP_SCHEMA

    return ingested_datasets(PARTNERSHIP_SCHEMA.dataset_names)


def outcome_as_dict(outcome: RefreshOutcome) -> dict[str, Any]:
    result = outcome.result
    snapshot = result.snapshot if result else None
    return {
        "dataset": outcome.dataset,
        "database": outcome.database,
        "refreshed": outcome.succeeded,
        "snapshot_id": snapshot.snapshot_id if snapshot else None,
        "rows_read": outcome.rows_read,
        "accepted": result.accepted if result else 0,
        "rejected": result.rejected if result else 0,
        "reject_report": str(result.reject_report) if result and result.reject_report else None,
        "checked_only": result.checked_only if result else False,
        "reader": outcome.reader,
        "read_seconds": round(outcome.read_seconds, 3),
        "seconds": round(outcome.seconds, 3),
        "problem": outcome.problem,
    }


def _echo_outcome(outcome: RefreshOutcome) -> None:
    result = outcome.result
    took = f"{outcome.seconds:.1f} s"
    if outcome.problem is not None:
        report = (
            f" Reject report: {result.reject_report}." if result and result.reject_report else ""
        )
        click.secho(
            f"{outcome.dataset}: NOT refreshed ({took}): {outcome.problem}{report}",
            err=True,
            fg="red",
        )
        return
    assert result is not None
    if result.checked_only:
        click.echo(
            f"{outcome.dataset}: check passed: {result.accepted} valid rows, {result.rejected} "
            f"rejected, from database {outcome.database} ({took}); nothing stored (--check)."
        )
        return
    assert result.snapshot is not None
    click.echo(
        f"{outcome.dataset}: {result.accepted} rows from database {outcome.database} stored as "
        f"snapshot {result.snapshot.snapshot_id} (now current; {took})."
    )
    if result.rejected:
        click.secho(
            f"warning: {outcome.dataset}: {result.rejected} rows rejected (within "
            f"ingest.max_rejected_fraction); see {result.reject_report}",
            err=True,
            fg="yellow",
        )


class _TerminalProgress:
    """A one-line spinner on stderr when it is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        self._console = Console(stderr=True)
        self._status: Status | None = None

    def __enter__(self) -> _TerminalProgress:
        if self._console.is_terminal:
            self._status = self._console.status("Connecting...")
            self._status.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def reading(self, dataset: str, database: str, rows: int) -> None:
        if self._status is not None:
            self._status.update(f"{dataset}: {rows:,} rows read from database {database}...")

    def validating(self, dataset: str, rows: int) -> None:
        if self._status is not None:
            self._status.update(f"{dataset}: validating {rows:,} rows...")

    def finished(self, outcome: RefreshOutcome) -> None:
        if self._status is not None:
            mark = "done" if outcome.succeeded else "FAILED"
            self._console.log(f"{outcome.dataset}: {mark} in {outcome.seconds:.1f} s")
            self._status.update("Connecting...")
