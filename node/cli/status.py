"""`npcs-node status DIR`: what data the node holds (later also budget and checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kernel.clikit import text_or_json_option


@click.command("status")
@click.argument(
    "node_dir", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@text_or_json_option
def command(node_dir: Path, output_format: str) -> None:
    """Show each dataset's snapshot, the budget, the ledger and the certificate's expiry.

    Warns when the node certificate expires within 30 days (or has expired).

    Includes the date range of each snapshot: that describes private data and is shown
    to the local operator only; it is never sent to the partnership.
    """
    from node.settings import load_settings

    settings = load_settings(node_dir)
    status = gather_status(node_dir, settings.name, settings.partnership)
    from node.layout import NodePaths
    from node.status_certificate import format_certificate_status, gather_certificate_status
    from node.status_ledger import format_ledger_status, gather_ledger_status

    status["ledger"] = gather_ledger_status(node_dir, settings)
    status["certificate"] = gather_certificate_status(NodePaths(node_dir))
    if output_format == "json":
        click.echo(json.dumps(status, indent=2, sort_keys=True))
    else:
        click.echo(format_status(status))
        click.echo(format_ledger_status(status["ledger"]))
        click.echo(format_certificate_status(status["certificate"]))
    if status["certificate"].get("warning"):
        click.echo(f"warning: {status['certificate']['warning']}", err=True)


def gather_status(node_dir: Path, name: str, partnership: str) -> dict[str, Any]:
    """Everything `status` shows, as plain data (other sections add their own keys)."""
    return {
        "node": name,
        "partnership": partnership,
        "folder": str(node_dir),
        "datasets": gather_data_status(node_dir),
    }


def gather_data_status(node_dir: Path) -> dict[str, dict[str, Any] | None]:
    """Per dataset: its current snapshot's public-to-the-operator facts, or None."""
    from node.layout import NodePaths
    from node.store import DataStore, StoreError
    from privacy.schema import PARTNERSHIP_SCHEMA

    store = DataStore(NodePaths(node_dir), PARTNERSHIP_SCHEMA)
    datasets: dict[str, dict[str, Any] | None] = {}
    for dataset in PARTNERSHIP_SCHEMA.dataset_names:
        try:
            snapshot = store.current(dataset)
        except StoreError as error:
            datasets[dataset] = {"error": str(error)}
            continue
        if snapshot is None:
            datasets[dataset] = None
            continue
        datasets[dataset] = {
            "snapshot_id": snapshot.snapshot_id,
            "rows": snapshot.rows,
            "rejected": snapshot.rejected,
            "created_at": snapshot.created_at,
            "source": snapshot.source,
            "snapshots_kept": len(store.snapshot_ids(dataset)),
            "local_only": {
                "date_ranges": {
                    column: list(bounds) for column, bounds in snapshot.date_ranges.items()
                }
            },
        }
    return datasets


def format_status(status: dict[str, Any]) -> str:
    lines = [f"node {status['node']} (partnership {status['partnership']}) at {status['folder']}"]
    lines.append("")
    header = ("dataset", "snapshot", "rows", "rejected", "created", "dates (local only)")
    rows = [header]
    for dataset, facts in status["datasets"].items():
        if facts is None:
            rows.append((dataset, "no data yet", "-", "-", "-", "-"))
        elif "error" in facts:
            rows.append((dataset, f"ERROR: {facts['error']}", "-", "-", "-", "-"))
        else:
            ranges = facts["local_only"]["date_ranges"]
            first = next(iter(ranges.values()), [None, None])
            rows.append(
                (
                    dataset,
                    facts["snapshot_id"],
                    str(facts["rows"]),
                    str(facts["rejected"]),
                    facts["created_at"],
                    f"{first[0]} .. {first[1]}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
              for row in rows]  # fmt: skip
    return "\n".join(lines)
