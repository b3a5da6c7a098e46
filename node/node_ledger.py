"""Opening a node's ledger from its folder and settings (used by `serve` and `ledger`)."""

from __future__ import annotations

from pathlib import Path

from kernel.keyfiles import load_ed25519_private_key
from node.high_water import HighWaterFile, refuse_missing_ledger, refuse_rollback
from node.layout import NodePaths
from node.permissions import create_private_file, make_private_dir
from node.settings import BudgetSettings, NodeSettings, load_settings
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetPolicy


def budget_policy(budget: BudgetSettings) -> BudgetPolicy:
    """The exact-unit budget policy of the node's settings."""
    return BudgetPolicy.from_rho(
        budget.unit_kind_totals(), budget.max_rho_per_query, budget.analyst_caps
    )


def ledger_origin(settings: NodeSettings) -> str:
    """The name a node's checkpoints carry: unique per partnership and node."""
    return f"npcs/{settings.partnership}/{settings.name}/ledger"


def open_node_ledger(root: Path, settings: NodeSettings | None = None) -> Ledger:
    """Open (creating if needed) the node's ledger with its key, origin and policy.

    The caller must run `startup_check()` (then `continue_verification()`), or
    `self_check()`, before answering queries.
    Raises LedgerRolledBack when the ledger is missing, shorter than the largest
    checkpoint this node has signed, or forked from it (see node.high_water).
    """
    paths = NodePaths(root)
    node_settings = settings if settings is not None else load_settings(root)
    key = load_ed25519_private_key(paths.ledger_key, "ledger key")
    high_water = HighWaterFile(paths.ledger_high_water)
    refuse_missing_ledger(high_water, paths.ledger_db)
    make_private_dir(paths.ledger_dir)
    create_private_file(paths.ledger_db)
    ledger = Ledger.open(
        paths.ledger_db,
        origin=ledger_origin(node_settings),
        signing_key=key,
        policy=budget_policy(node_settings.budget),
        delta=node_settings.budget.delta,
        high_water=high_water,
    )
    try:
        refuse_rollback(high_water, ledger, key)
    except BaseException:
        ledger.close()
        raise
    return ledger
