"""The demo's two coordinator users: the analyst asks, the auditor audits.

The analyst asks each showcase question exactly as `npcs query` would (same argument
parsing, same fan-out, verification and pooling) and insists that every node answered
with a verified ledger receipt; the auditor, with its own credentials and remembered
checkpoints, runs `npcs audit`'s checks on every node's ledger.
"""

from __future__ import annotations

from coordinator.audit.memory import open_audit_memory
from coordinator.audit.report import AuditReport
from coordinator.audit.run import audit_partnership
from coordinator.demo.processes import DemoError
from coordinator.demo.questions import Question
from coordinator.demo.setup import AUDITOR, PARTNERSHIP, Layout
from coordinator.partnership import Partnership
from coordinator.report import Report
from coordinator.session import Session

QUERY_TIMEOUT_SECONDS = 120.0


def analyst_session(layout: Layout, partnership: Partnership) -> Session:
    from coordinator.client import ClientCredentials
    from coordinator.fanout import FanoutSettings
    from coordinator.results import ResultsStore

    return Session(
        partnership=partnership,
        credentials=ClientCredentials.load(partnership.identity),
        settings=FanoutSettings(timeout=QUERY_TIMEOUT_SECONDS),
        store=ResultsStore(layout.root / "analyst" / "results.sqlite"),
    )


def ask(session: Session, question: Question) -> Report:
    """Ask as `npcs query` does: per-node progress on a terminal, warnings on stderr."""
    import click

    from coordinator.cli.progress import node_progress
    from coordinator.cli.query import query_line
    from coordinator.querying import run_query

    spec = question.spec()
    entries = session.partnership.nodes
    with node_progress(f"asking {len(entries)} node(s)", len(entries), query_line) as on_done:
        run = run_query(session, entries, spec, on_done=on_done)
    for warning in run.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    return run.report


def check_answered(report: Report) -> None:
    missing = [f"{s.node} ({s.code}: {s.reason})" for s in report.nodes if not s.answered]
    if missing:
        raise DemoError(f"not every node answered: {'; '.join(missing)}")
    if report.unverified_nodes:
        raise DemoError(f"ledger receipts did not verify: {', '.join(report.unverified_nodes)}")


class AuditorRun:
    """The auditor's side: own credentials, own remembered checkpoints."""

    def __init__(self, layout: Layout, partnership: Partnership) -> None:
        from coordinator.client import ClientCredentials

        self.partnership = Partnership(
            name=partnership.name,
            identity=layout.auditor.identity_files(),
            nodes=partnership.nodes,
        )
        self.credentials = ClientCredentials.load(self.partnership.identity)
        self.memory_path = layout.auditor.root / "audit_checkpoints.sqlite"

    def audit(self) -> AuditReport:
        return audit_partnership(
            self.partnership,
            self.credentials,
            auditor=f"npcs://{PARTNERSHIP}/auditor/{AUDITOR}",
            memory=open_audit_memory(self.memory_path),
            timeout=QUERY_TIMEOUT_SECONDS,
        )
