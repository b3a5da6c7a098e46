"""`npcs-node snapshots list|rollback`: see every stored snapshot, make an earlier one current.

A rollback changes which data queries read (immediately, even while `serve` runs); it
never changes the privacy budget: what was spent stays spent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kernel.clikit import text_or_json_option

if TYPE_CHECKING:
    from node.store import DataStore

NODE_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("snapshots")
def command() -> None:
    """List a node's data snapshots, or roll a dataset back to an earlier one."""


@command.command("list")
@click.argument("node_dir", metavar="DIR", type=NODE_DIR)
@click.argument("dataset", required=False)
@text_or_json_option
def list_snapshots(node_dir: Path, dataset: str | None, output_format: str) -> None:
    """Every snapshot of DATASET (default: every dataset), oldest first; * marks current."""
    store = _store(node_dir)
    datasets = [dataset] if dataset else list(store.schema.dataset_names)
    rows = [row for name in datasets for row in _rows(store, name)]
    if output_format == "json":
        click.echo(json.dumps({"snapshots": rows}, indent=2, sort_keys=True))
        return
    if not rows:
        click.echo("no snapshots yet: load data with `npcs-node ingest`")
    for row in rows:
        mark = "*" if row["current"] else " "
        click.echo(
            f"{mark} {row['dataset']:<15} {row['id']:<26} {row['rows']:>9} rows  "
            f"{row['rejected']:>6} rejected  {row['created_at']}  from {row['source']}"
        )


@command.command("rollback")
@click.argument("node_dir", metavar="DIR", type=NODE_DIR)
@click.argument("dataset")
@click.option(
    "--to",
    "snapshot_id",
    default=None,
    help="The snapshot id to make current (default: the one before the current one).",
)
def rollback(node_dir: Path, dataset: str, snapshot_id: str | None) -> None:
    """Make an earlier snapshot of DATASET current (its sha256 is checked first)."""
    from node.ingest import IngestError
    from node.snapshot_checks import SnapshotIntegrityError
    from node.store import StoreError

    store = _store(node_dir)
    try:
        target = store.rollback(dataset, snapshot_id)
    except (StoreError, SnapshotIntegrityError, IngestError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{dataset}: snapshot {target.snapshot_id} ({target.rows} rows, created "
        f"{target.created_at}) is now current. Spent privacy budget is unchanged."
    )


def _store(node_dir: Path) -> DataStore:
    from node.layout import NodePaths
    from node.settings import load_settings
    from node.store import DataStore, node_schema

    return DataStore(NodePaths(node_dir), node_schema(load_settings(node_dir)))


def _rows(store: DataStore, dataset: str) -> list[dict[str, Any]]:
    from node.ingest import IngestError

    try:
        ids = store.snapshot_ids(dataset)
        current = store.current(dataset)
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
    rows = []
    for snapshot_id in ids:
        snapshot = store.snapshot(dataset, snapshot_id)
        rows.append(
            {
                "dataset": dataset,
                "id": snapshot_id,
                "current": current is not None and current.snapshot_id == snapshot_id,
                "rows": snapshot.rows,
                "rejected": snapshot.rejected,
                "created_at": snapshot.created_at,
                "source": snapshot.source,
            }
        )
    return rows
