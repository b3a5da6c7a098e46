"""The budget and ledger part of `npcs-node status`: remaining rho per dataset and the
last signed checkpoint. Reads the ledger without creating or changing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.layout import NodePaths
from node.node_ledger import budget_policy
from node.settings import NodeSettings
from privacy.budget import format_rho
from privacy.ledger.errors import LedgerError
from privacy.ledger.reader import LedgerReader


def gather_ledger_status(node_dir: Path, settings: NodeSettings) -> dict[str, Any]:
    """Spent, total and remaining budget per dataset, and the latest checkpoint."""
    policy = budget_policy(settings.budget)
    paths = NodePaths(node_dir)
    file_bytes = paths.ledger_db.stat().st_size if paths.ledger_db.exists() else 0
    if not paths.ledger_db.exists():
        spent: dict[str, int] = {}
        checkpoint: dict[str, Any] | None = None
    else:
        try:
            with LedgerReader.open_existing(paths.ledger_db) as reader:
                spent = reader.spent_by_dataset()
                latest = reader.latest_checkpoint()
        except LedgerError as error:
            return {"error": str(error)}
        checkpoint = {
            "origin": latest.checkpoint.origin,
            "size": latest.checkpoint.size,
            "root": latest.checkpoint.root.hex(),
        }
    budget = {
        dataset: {
            "total_rho": format_rho(policy.dataset_total(dataset)),
            "spent_rho": format_rho(spent.get(dataset, 0)),
            "remaining_rho": format_rho(policy.remaining(dataset, spent.get(dataset, 0), None, 0)),
        }
        for dataset in sorted(set(policy.total_units_per_dataset) | set(spent))
    }
    return {"budget": budget, "checkpoint": checkpoint, "file_bytes": file_bytes}


def format_ledger_status(ledger: dict[str, Any]) -> str:
    if "error" in ledger:
        return f"\nledger: ERROR: {ledger['error']}"
    lines = ["", "budget (rho)  total / spent / remaining"]
    for dataset, facts in ledger["budget"].items():
        lines.append(
            f"  {dataset}: {facts['total_rho']} / {facts['spent_rho']} / {facts['remaining_rho']}"
        )
    checkpoint = ledger["checkpoint"]
    if checkpoint is None:
        lines.append("last checkpoint: none (no ledger yet)")
    else:
        lines.append(
            f"last checkpoint: {checkpoint['size']} entries, root {checkpoint['root']} "
            f"({checkpoint['origin']}); ledger file {ledger['file_bytes']} bytes"
        )
    return "\n".join(lines)
