"""The budget and ledger part of `npcs-node status`: spending per privacy-unit kind (child,
staff) and the last signed checkpoint. Reads the ledger without creating or changing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.layout import NodePaths
from node.node_ledger import budget_policy
from node.settings import NodeSettings
from privacy.budget import format_rho
from privacy.ledger.errors import LedgerError
from privacy.ledger.reader import LedgerReader
from privacy.unit_spending import spending_per_unit_kind


def gather_ledger_status(node_dir: Path, settings: NodeSettings) -> dict[str, Any]:
    """Spent, total and remaining budget per unit kind (rho, and epsilon at the
    partnership's delta), and the latest checkpoint."""
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
        row.unit_kind: {
            "datasets": list(row.datasets),
            "total_rho": None if row.total_units is None else format_rho(row.total_units),
            "spent_rho": format_rho(row.spent_units),
            "remaining_rho": format_rho(row.remaining_units),
            "spent_epsilon": row.spent_epsilon,
            "total_epsilon": row.total_epsilon,
            "delta": row.delta,
        }
        for row in spending_per_unit_kind(policy, spent, settings.budget.delta)
    }
    return {"budget": budget, "checkpoint": checkpoint, "file_bytes": file_bytes}


def format_ledger_status(ledger: dict[str, Any]) -> str:
    if "error" in ledger:
        return f"\nledger: ERROR: {ledger['error']}"
    lines = ["", "budget per person (rho)  total / spent / remaining  (epsilon spent at delta)"]
    for kind, facts in ledger["budget"].items():
        lines.append(
            f"  {kind} ({', '.join(facts['datasets'])}): {facts['total_rho'] or 'no budget'} / "
            f"{facts['spent_rho']} / {facts['remaining_rho']}  "
            f"(epsilon {float(facts['spent_epsilon']):.4g} at delta {facts['delta']})"
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
