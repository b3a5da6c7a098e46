"""`npcs nodes`: each node's reachability, schema, datasets, remaining budget, checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coordinator.cli.errors import user_errors

if TYPE_CHECKING:
    from collections.abc import Sequence

    from coordinator.checkpoints import RememberedCheckpoint
    from coordinator.errors import NodeProblem
    from coordinator.partnership import NodeEntry
    from coordinator.session import Session
    from kernel.messages import NodeDescription

EXIT_PARTIAL = 3
EXIT_LEDGER_KEY = 4
"""A node answered with a ledger key (or checkpoint signature) other than the pinned one."""
EXIT_LEDGER_UNTRUSTED = 5
"""A node's ledger went back on the checkpoint remembered from it (shrank, forked, or no
proof that it only grew)."""


@click.command("nodes")
@click.option("--nodes", help="Comma-separated node names (default: all).")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per node.")
@click.option(
    "--forget-checkpoint",
    "forget",
    metavar="NODE",
    multiple=True,
    help="Forget the checkpoint remembered for NODE first, so its current ledger is "
    "accepted as new: only after the auditor cleared a recorded `npcs-node ledger reset`.",
)
@click.option("--config", envvar="NPCS_CONFIG", type=click.Path(path_type=Path))
@user_errors()
def command(
    nodes: str | None,
    output_format: str,
    timeout: float,
    forget: tuple[str, ...],
    config: Path | None,
) -> None:
    """Show each node: reachable or not (and why), schema, datasets, budget, checkpoint.

    Exits 5 when some node's ledger went back on the checkpoint remembered from it
    (shrank, forked, or no proof that it only grew), else 4 when some node's ledger key
    is not the pinned one (or its checkpoint signature does not verify), else 3 when
    some node is unreachable.
    """
    from coordinator.fanout import describe_node, fan_out
    from coordinator.session import open_session

    session = open_session(config, timeout=timeout)
    entries = session.select_nodes(nodes)
    _forget(session, forget)
    remembered = session.store.checkpoints.remembered(session.partnership.name)
    described = fan_out(
        entries,
        lambda entry: describe_node(
            entry,
            session.credentials,
            session.settings,
            remembered.get(entry.name),
            unit_kind_epsilon=True,
        ),
    )
    rows = [
        node_row(entry, *described[entry.name], remembered=remembered.get(entry.name))
        for entry in entries
    ]
    _remember(
        session,
        [(entry, described[entry.name][0], row) for entry, row in zip(entries, rows, strict=True)],
    )
    if output_format == "json":
        click.echo(json.dumps({"nodes": rows}, indent=2, sort_keys=True))
    else:
        click.echo(_table(rows), nl=False)
    if any(row.get("ledger_untrusted") for row in rows):
        raise SystemExit(EXIT_LEDGER_UNTRUSTED)
    if any(_ledger_key_problem(row) for row in rows):
        raise SystemExit(EXIT_LEDGER_KEY)
    if not all(row["reachable"] for row in rows):
        raise SystemExit(EXIT_PARTIAL)


def node_row(
    entry: NodeEntry,
    description: NodeDescription | None,
    problem: NodeProblem | None,
    *,
    remembered: RememberedCheckpoint | None = None,
) -> dict[str, object]:
    """One node as `npcs nodes --format json` prints it (docs/analyst-guide.md)."""
    from coordinator.checkpoints import check_continuity
    from coordinator.client import pinned_ledger_key
    from privacy.budget import format_rho

    row: dict[str, object] = {
        "name": entry.name,
        "address": entry.address,
        "reachable": description is not None,
        "problem": None if problem is None else {"code": problem.code, "reason": problem.reason},
    }
    if description is None:
        return row
    try:
        key = pinned_ledger_key(description, entry)
        key_problem = None
    except ValueError as exc:
        key, key_problem = None, str(exc)
    checkpoint = description.latest_checkpoint
    untrusted = (
        None
        if key is None
        else check_continuity(entry.name, remembered, checkpoint, description.consistency, key)
    )
    row.update(
        {
            "schema_version": description.schema.version,
            "datasets": list(description.policy.datasets),
            "remaining_rho": {
                name: format_rho(units)
                for name, units in sorted(description.remaining_units.items())
            },
            "budget_per_unit_kind": {
                budget.unit_kind: {
                    "datasets": list(budget.datasets),
                    "total_rho": budget.total_rho or None,
                    "spent_rho": format_rho(budget.spent_units),
                    "remaining_rho": format_rho(budget.remaining_units),
                    "spent_epsilon": budget.spent_epsilon or None,
                    "total_epsilon": budget.total_epsilon or None,
                    "delta": description.policy.delta,
                }
                for budget in description.unit_kind_budgets
            },
            "ledger_key_pinned": key_problem is None,
            "ledger_key_problem": key_problem,
            "checkpoint": None
            if checkpoint is None
            else {
                "size": checkpoint.size,
                "root": checkpoint.root.hex(),
                "signature_verified": key is not None and checkpoint.signed.verify(key),
            },
            "opendp_version": description.opendp_version,
            "ledger_untrusted": None
            if untrusted is None
            else {"kind": untrusted.kind, "reason": untrusted.message()},
        }
    )
    return row


def _remember(
    session: Session,
    nodes: Sequence[tuple[NodeEntry, NodeDescription | None, dict[str, object]]],
) -> None:
    """Remember every verified checkpoint (one transaction); note in a node's row if its
    ledger went backwards."""
    from datetime import UTC, datetime

    from coordinator.checkpoints import RememberedCheckpoint

    seen_at = datetime.now(UTC).isoformat(timespec="seconds")
    verified = [
        (
            row,
            RememberedCheckpoint.seen(
                entry.name,
                description.latest_checkpoint,
                key_fingerprint=entry.ledger_key_fingerprint,
                seen_at=seen_at,
            ),
        )
        for entry, description, row in nodes
        if description is not None
        and description.latest_checkpoint is not None
        and _signature_verified(row)
        and not row["ledger_untrusted"]
    ]
    regressions = session.store.checkpoints.remember(
        session.partnership.name, [seen for _, seen in verified]
    )
    warnings = {regression.node: regression.warning() for regression in regressions}
    for row, seen in verified:
        row["ledger_warning"] = warnings.get(seen.node)


def _forget(session: Session, names: Sequence[str]) -> None:
    """Forget each NODE's remembered checkpoint, saying on stderr what was forgotten."""
    from coordinator.ledger_resets import forgotten_line, require_partnership_nodes

    require_partnership_nodes(session.partnership, names, option="--forget-checkpoint")
    for name in names:
        forgotten = session.store.checkpoints.forget(session.partnership.name, name)
        click.echo(forgotten_line(name, forgotten), err=True)


def _ledger_key_problem(row: dict[str, object]) -> bool:
    """A reachable node whose key is not the pinned one, or whose checkpoint fails."""
    if not row["reachable"]:
        return False
    checkpoint = row.get("checkpoint")
    return bool(row.get("ledger_key_problem")) or (
        isinstance(checkpoint, dict) and not checkpoint.get("signature_verified")
    )


def _signature_verified(row: dict[str, object]) -> bool:
    checkpoint = row.get("checkpoint")
    return isinstance(checkpoint, dict) and bool(checkpoint.get("signature_verified"))


def _unit_kind_line(kind: str, budget: dict[str, object]) -> str:
    """'  child (incidents, reports): spent rho 0.5 of 10 (eps 3.1 at delta 1e-9), ...'"""
    datasets = budget["datasets"]
    assert isinstance(datasets, list)
    epsilon = (
        f" (eps {float(str(budget['spent_epsilon'])):.4g} at delta {budget['delta']})"
        if budget["spent_epsilon"]
        else ""
    )
    return (
        f"  {kind} ({', '.join(datasets)}): spent rho {budget['spent_rho']} of "
        f"{budget['total_rho'] or 'no budget'}{epsilon}, remaining rho {budget['remaining_rho']}"
    )


def _table(rows: list[dict[str, object]]) -> str:
    lines: list[str] = []
    for row in rows:
        lines.append(f"{row['name']}  {row['address']}")
        if not row["reachable"]:
            problem = row["problem"]
            assert isinstance(problem, dict)
            lines.append(f"  UNREACHABLE or refused: {problem['code']}: {problem['reason']}")
            continue
        lines.append(f"  reachable; schema {row['schema_version']}, OpenDP {row['opendp_version']}")
        remaining = row["remaining_rho"]
        assert isinstance(remaining, dict)
        datasets = row["datasets"]
        assert isinstance(datasets, list)
        per_kind = row["budget_per_unit_kind"]
        assert isinstance(per_kind, dict)
        for kind, budget in per_kind.items():
            lines.append(_unit_kind_line(kind, budget))
        if not per_kind:  # a node from before per-person budgets
            for dataset in datasets:
                lines.append(f"  {dataset:<16} remaining rho {remaining.get(dataset, 'n/a')}")
        checkpoint = row["checkpoint"]
        if isinstance(checkpoint, dict):
            state = (
                "signature verified"
                if checkpoint["signature_verified"]
                else ("SIGNATURE DOES NOT VERIFY")
            )
            lines.append(f"  ledger checkpoint: {checkpoint['size']} entries, {state}")
        if row.get("ledger_key_problem"):
            lines.append(f"  WARNING: {row['ledger_key_problem']}")
        untrusted = row.get("ledger_untrusted")
        if isinstance(untrusted, dict):
            lines.append(f"  REFUSED ({untrusted['kind']}): {untrusted['reason']}")
        if row.get("ledger_warning"):
            lines.append(f"  WARNING: {row['ledger_warning']}")
    return "\n".join(lines) + "\n"
