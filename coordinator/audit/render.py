"""The audit report for people and programs: terminal lines, markdown, JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from coordinator.audit.report import AuditReport, DatasetSpending, NodeAudit, UnitKindSpending


def _spending_text(node: NodeAudit) -> str:
    if not node.spending_known:
        return "unknown (the audit could not sum its charges)"
    return _spent_text(node.spending, node.unit_kind_spending)


def _spent_before(node: NodeAudit) -> str:
    """The archived ledger's spending (`--archived-ledger`), against today's totals."""
    return _spent_text(node.spent_before_reset, node.unit_kind_spent_before_reset)


def _spent_text(
    spending: Sequence[DatasetSpending], unit_kind_spending: Sequence[UnitKindSpending]
) -> str:
    if unit_kind_spending:
        return ", ".join(_unit_kind_text(row) for row in unit_kind_spending)
    parts = [
        f"{row.dataset} {row.spent_rho}/{row.total_rho or '-'}"
        for row in spending
        if row.charges or row.spent_units
    ]
    return ", ".join(parts) or "nothing spent"


def _unit_kind_text(row: UnitKindSpending) -> str:
    """'child 0.5/10 (eps 3.1 at delta 1e-9)': spent of total per kind of person."""
    epsilon = (
        f" (eps {float(row.spent_epsilon):.4g} at delta {row.delta})"
        if row.spent_epsilon is not None
        else ""
    )
    return f"{row.unit_kind} {row.spent_rho}/{row.total_rho or '-'}{epsilon}"


def _history_text(node: NodeAudit) -> str:
    if node.previous_size is None:
        return "first audit"
    if node.accepted_reset is not None:
        return f"new ledger accepted, replacing remembered size {node.previous_size}"
    remembered = f"size {node.previous_size} ({node.previous_seen_at})"
    if node.result == "OK":
        return f"extends {remembered}"
    if node.result == "UNREACHABLE":
        return f"not checked (remembered {remembered})"
    return f"checked against remembered {remembered}"


def summary_lines(report: AuditReport) -> list[str]:
    """Plain text for the terminal: one line per node, then its problems and warnings."""
    lines = [
        f"Ledger audit of partnership {report.partnership} as {report.auditor} "
        f"({report.created_at})"
    ]
    width = max((len(node.node) for node in report.nodes), default=4)
    for node in report.nodes:
        entries = "-" if node.entries is None else str(node.entries)
        lines.append(
            f"  {node.result:<11} {node.node:<{width}}  {entries} entries, "
            f"{_history_text(node)}, {node.signed_requests_verified} signed requests verified, "
            f"spent rho {_spending_text(node)}"
        )
        if node.accepted_reset is not None:
            lines.append(f"              accepted: {node.accepted_reset}")
        if node.spent_before_reset:
            lines.append(f"              spent before the reset: {_spent_before(node)}")
        lines += [f"              problem: {problem}" for problem in node.problems]
        lines += [f"              warning: {warning}" for warning in node.warnings]
    lines.append(f"Result: {_verdict(report)}")
    return lines


def _verdict(report: AuditReport, ok: str = "every ledger checks out") -> str:
    if report.ok:
        return ok
    parts = []
    if report.failed_nodes:
        parts.append(f"FAILED: {', '.join(report.failed_nodes)}")
    if report.unreachable_nodes:
        parts.append(f"UNREACHABLE (not audited): {', '.join(report.unreachable_nodes)}")
    return "; ".join(parts)


def report_markdown(report: AuditReport) -> str:
    verdict = _verdict(report, ok="all ledgers OK")
    lines = [
        f"# Ledger audit: partnership `{report.partnership}`",
        "",
        f"- auditor: `{report.auditor}`",
        f"- time: {report.created_at}",
        f"- result: **{verdict}**",
        "",
        "| node | result | entries | signed root | history | signed requests | spent rho / total |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for node in report.nodes:
        root = f"`{node.checkpoint_root[:16]}...`" if node.checkpoint_root else "-"
        lines.append(
            f"| {node.node} | {node.result} | {node.entries if node.entries is not None else '-'} "
            f"| {root} | {_history_text(node)} | {node.signed_requests_verified} "
            f"| {_spending_text(node)} |"
        )
    for node in report.nodes:
        if not node.problems and not node.warnings and node.accepted_reset is None:
            continue
        lines += ["", f"## {node.node}: {node.result}", ""]
        if node.accepted_reset is not None:
            lines.append(f"- accepted: {node.accepted_reset}")
        if node.spent_before_reset:
            lines.append(f"- spent before the reset: {_spent_before(node)}")
        lines += [f"- problem: {problem}" for problem in node.problems]
        lines += [f"- warning: {warning}" for warning in node.warnings]
    lines += [
        "",
        "Checks per node: pinned ledger key; checkpoint signature; every entry's fields "
        "against its leaf data; the recomputed Merkle root against the signed root; the "
        "checkpoint remembered from the last audit is a prefix (root and consistency "
        "proof); each analyst's signed request; each recorded release; spent rho per "
        "dataset and per privacy-unit kind (child, staff: the sum of the charges on every "
        "dataset about that kind of person) within the published policy totals.",
    ]
    return "\n".join(lines) + "\n"


def report_json(report: AuditReport) -> str:
    body = report.model_dump(mode="json")
    body["ok"] = report.ok
    return json.dumps(body, indent=2) + "\n"


def write_report(report: AuditReport, path: Path) -> Path:
    """JSON when the file name ends in .json, else markdown."""
    text = report_json(report) if path.suffix.lower() == ".json" else report_markdown(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
