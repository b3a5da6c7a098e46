"""`npcs demo`: a whole partnership on this machine, from nothing, and back to nothing.

Steps, each shown on stderr as it runs:

1. The partnership operator creates a CA and issues an analyst and an auditor identity.
2. Each jurisdiction's IT does what a real deployment does, with the real `npcs-node`
   command line as subprocesses: `init` (keys, CSR, node.toml), `install-cert` (after the
   CA signed the CSR), `synth` (seeded synthetic records through the real ingest path),
   then node.toml is set to allow the demo analyst and budget the showcase queries.
3. Every node is started with `npcs-node serve DIR --port 0` on 127.0.0.1; the demo waits
   for each one's `listening on` line (no fixed sleeps).
4. The analyst writes partnership.toml (addresses and pinned ledger keys) and asks the
   showcase questions through the coordinator (tables on stdout, a trend chart).
5. The auditor audits every node's ledger (twice: a baseline after the first question,
   then at the end, which proves with a consistency proof that each ledger only grew).
6. Every node is stopped (SIGTERM, then SIGKILL if it does not exit) — in a `finally`,
   so an error or Ctrl-C never leaves a node running.

The data are deterministic (fixed sizes and seeds); the DP noise, by design, is not.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from rich.console import Console
from rich.table import Table

from coordinator.audit.render import summary_lines
from coordinator.audit.render import write_report as write_audit_report
from coordinator.demo.database_feed import DatabaseFeed, DatabaseFeedError
from coordinator.demo.processes import DemoError, NodeProcess, stop_on_sigterm
from coordinator.demo.questions import QUESTIONS
from coordinator.demo.roles import AuditorRun, analyst_session, ask, check_answered
from coordinator.demo.setup import (
    ANALYST,
    AUDITOR,
    DATASETS,
    JURISDICTIONS,
    PARTNERSHIP,
    RESULTS_DIR,
    Jurisdiction,
    Layout,
    ProvisionedNode,
    create_partnership_pki,
    database_jurisdiction,
    prepare_workdir,
    provision_node,
    select_jurisdictions,
    write_partnership,
)
from coordinator.report import Report
from coordinator.session import Session

READY_TIMEOUT_SECONDS = 120.0

T = TypeVar("T")


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path | None = None
    """Working folder (new or empty); None: a fresh temporary folder."""
    keep: bool = False
    """Keep the CA, credentials and node folders (otherwise only results/ stays)."""
    nodes: int = len(JURISDICTIONS)
    scale: float = 1.0
    """Shrink every jurisdiction's population (quick runs, tests)."""
    database: str | None = None
    """A PostgreSQL URL: one jurisdiction reads its data from there (`npcs-node refresh`)."""


@dataclass
class DemoOutcome:
    workdir: Path
    chart: Path | None = None
    forest_chart: Path | None = None
    audit_report: Path | None = None
    audit_json: Path | None = None
    tables: Path | None = None
    audit_ok: bool = False
    kept: bool = False
    seconds: float = 0.0
    reports: dict[str, Report] = field(default_factory=dict)
    database_note: str | None = None
    """Which jurisdiction read its data from which database, when one did."""


# --- progress -----------------------------------------------------------------------------


class Steps:
    """Numbered progress lines on stderr, with the time each step took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.number = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.number += 1
        started = time.perf_counter()
        self.console.print(f"[bold cyan]{self.number:>2}.[/] {title} ...")
        yield
        elapsed = time.perf_counter() - started
        self.console.print(f"    [green]done[/] in {elapsed:.1f} s")

    def note(self, text: str) -> None:
        self.console.print(f"    {text}", highlight=False, soft_wrap=True, markup=False)


def in_parallel(items: Sequence[T], work: Callable[[T], object], workers: int) -> list[object]:
    """Run `work` on every item with `workers` threads; the first failure propagates."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(work, items))


# --- the run ---------------------------------------------------------------------------------


def run_demo(options: DemoOptions, stdout: IO[str], stderr: IO[str]) -> DemoOutcome:
    """Everything, in order; every started node is stopped before this returns or raises."""
    started = time.perf_counter()
    jurisdictions = select_jurisdictions(options.nodes, options.scale)
    feed = _database_feed(options.database)
    layout = Layout(prepare_workdir(options.workdir))
    run = DemoRun(layout, Steps(Console(file=stderr, highlight=False)), stdout)
    run.feed, run.fed_jurisdiction = feed, database_jurisdiction(jurisdictions) if feed else None
    run.steps.console.print(
        f"[bold]npcs demo[/]: a partnership of {len(jurisdictions)} jurisdictions in {layout.root}"
    )
    try:
        with stop_on_sigterm():
            run.execute(jurisdictions)
    finally:
        _stop_nodes(run.running, run.steps)
        run.outcome.kept = options.keep or options.workdir is not None
        if feed is not None:
            run.outcome.database_note = _finish_database(feed, run)
        if not run.outcome.kept:
            _remove_all_but_results(layout)
        run.outcome.seconds = time.perf_counter() - started
    return run.outcome


class DemoRun:
    """The state of one demo run; `running` lists every node process started so far."""

    def __init__(self, layout: Layout, steps: Steps, stdout: IO[str]) -> None:
        self.layout = layout
        self.steps = steps
        self.stdout = stdout
        self.outcome = DemoOutcome(workdir=layout.root)
        self.running: list[NodeProcess] = []
        self.feed: DatabaseFeed | None = None
        self.fed_jurisdiction: str | None = None
        self.tables = Console(file=stdout, width=_table_width(stdout), highlight=False, record=True)

    def execute(self, jurisdictions: Sequence[Jurisdiction]) -> None:
        provisioned = self.set_up_nodes(jurisdictions)
        addresses = self.start_nodes(provisioned)
        with self.steps.step(
            "analyst: partnership.toml with node addresses and pinned ledger keys"
        ):
            partnership = write_partnership(self.layout, addresses, provisioned)
            self.steps.note(str(self.layout.config))
        self.tables.print(jurisdictions_table(provisioned, addresses))
        self.tables.print()
        auditor = AuditorRun(self.layout, partnership)
        with analyst_session(self.layout, partnership) as session:
            self.ask_questions(session, auditor)
        self.show_tables()
        self.write_chart()
        self.final_audit(auditor)

    def set_up_nodes(self, jurisdictions: Sequence[Jurisdiction]) -> list[ProvisionedNode]:
        steps, layout = self.steps, self.layout
        with steps.step("partnership CA; analyst and auditor identities"):
            authority = create_partnership_pki(layout)
            steps.note(f"CA in {layout.ca}")
            steps.note(f"npcs://{PARTNERSHIP}/analyst/{ANALYST} in {layout.analyst.root}")
            steps.note(f"npcs://{PARTNERSHIP}/auditor/{AUDITOR} in {layout.auditor.root}")
        layout.nodes.mkdir()
        provisioned: list[ProvisionedNode] = []

        def provision(jurisdiction: Jurisdiction) -> None:
            fed = self.feed if jurisdiction.name == self.fed_jurisdiction else None
            node = provision_node(layout, authority, jurisdiction, fed)
            provisioned.append(node)
            source = f", read from PostgreSQL {fed.shown_url} by npcs-node refresh" if fed else ""
            steps.note(
                f"{jurisdiction.name} ({jurisdiction.kind}, {jurisdiction.children:,} children): "
                + ", ".join(f"{dataset} {count:,}" for dataset, count in node.rows.items())
                + f" rows{source}"
            )

        with steps.step("jurisdiction IT: npcs-node init, install-cert, synth; edit node.toml"):
            in_parallel(jurisdictions, provision, workers=min(2, os.cpu_count() or 1))
        order = {j.name: i for i, j in enumerate(jurisdictions)}
        return sorted(provisioned, key=lambda node: order[node.jurisdiction.name])

    def start_nodes(self, provisioned: Sequence[ProvisionedNode]) -> dict[str, str]:
        addresses: dict[str, str] = {}
        with self.steps.step("starting every node: npcs-node serve DIR --port 0 on 127.0.0.1"):
            for node in provisioned:
                self.running.append(NodeProcess(node.jurisdiction.name, node.root))
            for process in self.running:
                addresses[process.name] = process.wait_ready(READY_TIMEOUT_SECONDS)
                self.steps.note(
                    f"{process.name} listening on {addresses[process.name]} "
                    f"(pid {process.process.pid}, log {process.log})"
                )
        return addresses

    def ask_questions(self, session: Session, auditor: AuditorRun) -> None:
        for index, question in enumerate(QUESTIONS):
            with self.steps.step(f"query: {question.purpose.removeprefix('demo: ')}"):
                self.steps.note(question.command_line())
                report = ask(session, question)
                check_answered(report)
                self.outcome.reports[question.key] = report
            if index == 0:
                with self.steps.step("auditor: baseline audit of every ledger"):
                    baseline = auditor.audit()
                    if not baseline.ok:
                        raise DemoError(
                            "the baseline audit failed: " + "; ".join(summary_lines(baseline))
                        )
                    self.steps.note("every ledger checks out; its checkpoint is remembered")

    def show_tables(self) -> None:
        from coordinator.demo.showcase import (
            cause_table,
            improvement_table,
            incidents_by_year_tables,
            psych_safety_table,
            racial_disparity_table,
            recurrence_table,
            separations_table,
            sleep_table,
        )

        reports = self.outcome.reports
        renderables = [
            *incidents_by_year_tables(reports["incidents_by_year"]),
            cause_table(reports["fatality_causes"]),
            sleep_table(reports["sleep_related"]),
            improvement_table(reports["improvement_opportunities"]),
            recurrence_table(reports["recurrence"]),
            racial_disparity_table(reports["victims_by_race"]),
            separations_table(reports["separations"]),
            psych_safety_table(reports["psych_safety"]),
        ]
        for renderable in renderables:
            self.tables.print(renderable)
            self.tables.print()

    def write_chart(self) -> None:
        from coordinator.charts import write_chart

        with self.steps.step("chart: incidents per year with 95% error bars (`npcs query --plot`)"):
            self.layout.results.mkdir(exist_ok=True)
            self.outcome.chart = write_chart(
                self.outcome.reports["incidents_by_year"],
                self.layout.results / "incident-trend.png",
                rates=True,
            )
        self.write_forest_chart()

    def write_forest_chart(self) -> None:
        from coordinator.charts_forest import write_forest_chart
        from coordinator.disparity import compute_disparity

        title = "chart: racial disparity forest chart (`npcs results disparity --plot`)"
        with self.steps.step(title):
            self.outcome.forest_chart = write_forest_chart(
                compute_disparity(self.outcome.reports["victims_by_race"]),
                self.layout.results / "racial-disparity.png",
            )

    def final_audit(self, auditor: AuditorRun) -> None:
        results = self.layout.results
        with self.steps.step("auditor: final audit (each ledger extends the baseline)"):
            report = auditor.audit()
            self.outcome.audit_ok = report.ok
            self.outcome.audit_report = write_audit_report(report, results / "audit-report.md")
            self.outcome.audit_json = write_audit_report(report, results / "audit-report.json")
        for line in summary_lines(report):
            self.tables.print(line, soft_wrap=True)
        self.outcome.tables = results / "tables.txt"
        self.outcome.tables.write_text(self.tables.export_text(), encoding="utf-8")
        if not report.ok:
            raise DemoError(
                f"the audit failed for {', '.join(report.failed_nodes)}; "
                f"see {self.outcome.audit_report}"
            )


def _database_feed(url: str | None) -> DatabaseFeed | None:
    if url is None:
        return None
    try:
        return DatabaseFeed.for_url(url)
    except DatabaseFeedError as exc:
        raise DemoError(str(exc)) from None


def _finish_database(feed: DatabaseFeed, run: DemoRun) -> str:
    """Drop the demo's schema unless the partnership is kept; say what happened."""
    said = f"{run.fed_jurisdiction} read its data from PostgreSQL {feed.shown_url}"
    if run.outcome.kept:
        return f"{said}, schema {feed.schema} (kept; drop it when done)"
    try:
        feed.drop()
    except DatabaseFeedError as exc:
        return f"{said}; schema {feed.schema} could not be dropped: {exc}"
    return f"{said}, schema {feed.schema} (dropped)"


def _table_width(stream: IO[str]) -> int:
    if stream.isatty():
        return max(shutil.get_terminal_size((140, 40)).columns, 100)
    return 160


def jurisdictions_table(provisioned: Sequence[ProvisionedNode], addresses: dict[str, str]) -> Table:
    table = Table(title="The partnership: synthetic jurisdictions, each a node process")
    for column in ("node", "kind", "children", "address"):
        table.add_column(column, justify="right" if column == "children" else "left")
    for dataset in DATASETS:
        table.add_column(f"{dataset} rows", justify="right")
    for node in provisioned:
        table.add_row(
            node.jurisdiction.name,
            node.jurisdiction.kind,
            f"{node.jurisdiction.children:,}",
            addresses[node.jurisdiction.name],
            *(f"{node.rows.get(dataset, 0):,}" for dataset in DATASETS),
        )
    return table


def _stop_nodes(running: Sequence[NodeProcess], steps: Steps) -> None:
    if not running:
        return
    with steps.step(f"stopping {len(running)} node(s): SIGTERM, then SIGKILL after a grace period"):
        for process in running:
            process.request_stop()  # all at once, so their grace periods overlap
        for process in running:
            code = process.stop()
            steps.note(f"{process.name} stopped (exit {code})")


def _remove_all_but_results(layout: Layout) -> None:
    """Tear the partnership down (keys, CA, node data); keep the results folder."""
    for child in layout.root.iterdir():
        if child.name == RESULTS_DIR:
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
