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

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from rich.console import Console
from rich.table import Table

from coordinator.audit import AuditMemory, AuditReport, audit_partnership, summary_lines
from coordinator.audit import write_report as write_audit_report
from coordinator.ca import (
    CertificateAuthority,
    CredentialPaths,
    init_ca,
    issue_person_credentials,
    load_csr,
)
from coordinator.demo.database_feed import DatabaseFeed, DatabaseFeedError
from coordinator.demo.showcase import FIRST_YEAR, LAST_YEAR, QUESTIONS, Question
from coordinator.partnership import IdentityFiles, NodeEntry, Partnership, save_partnership
from coordinator.report import Report
from coordinator.session import Session

PARTNERSHIP = "demo"
ANALYST = "demo-analyst"
AUDITOR = "demo-auditor"
READY_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 5.0
SERVE_GRACE_SECONDS = 2.0
QUERY_TIMEOUT_SECONDS = 120.0
NODE_BUDGET_RHO = "20"
NODE_MAX_RHO_PER_QUERY = "2"
RESULTS_DIR = "results"
DATASETS = ("incidents", "reports", "workforce", "safety_culture")

T = TypeVar("T")


class DemoError(Exception):
    """A demo step failed; the message says which and where to look."""


@dataclass(frozen=True)
class Jurisdiction:
    name: str
    kind: str
    children: int
    seed: int


JURISDICTIONS: tuple[Jurisdiction, ...] = (
    Jurisdiction("north-state", "state", 1_500_000, 101),
    Jurisdiction("south-state", "state", 600_000, 202),
    Jurisdiction("bay-county", "county", 250_000, 303),
    Jurisdiction("hill-county", "county", 90_000, 404),
    Jurisdiction("river-nation", "tribal nation", 3_000, 505),
)
"""Sizes differ by orders of magnitude, as real partnerships do."""


def select_jurisdictions(count: int, scale: float = 1.0) -> tuple[Jurisdiction, ...]:
    """`count` jurisdictions spread over the size range (largest and smallest first kept)."""
    if not 1 <= count <= len(JURISDICTIONS):
        raise DemoError(f"--nodes must be between 1 and {len(JURISDICTIONS)}, got {count}")
    if not 0 < scale <= 1:
        raise DemoError(f"--scale must be in (0, 1], got {scale}")
    last = len(JURISDICTIONS) - 1
    indices = sorted({round(i * last / max(count - 1, 1)) for i in range(count)})
    return tuple(
        Jurisdiction(j.name, j.kind, max(int(j.children * scale), 100), j.seed)
        for j in (JURISDICTIONS[i] for i in indices)
    )


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


# --- the npcs-node command line as subprocesses -----------------------------------------------


def node_command() -> list[str]:
    """How to run `npcs-node` from this Python (its script, or the module if not installed)."""
    script = Path(sys.executable).with_name("npcs-node")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from node.cli import main; main()"]


def run_node_cli(arguments: Sequence[str], log: Path) -> str:
    """Run `npcs-node ARGS`, append its output to `log`, return its stdout."""
    command = [*node_command(), *arguments]
    completed = subprocess.run(  # noqa: S603 - our own CLI, arguments built here
        command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ npcs-node {' '.join(arguments)}\n{completed.stdout}{completed.stderr}\n")
    if completed.returncode != 0:
        raise DemoError(
            f"`npcs-node {' '.join(arguments)}` failed (exit {completed.returncode}): "
            f"{_last_line(completed.stderr or completed.stdout)}; full output in {log}"
        )
    return completed.stdout


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class NodeProcess:
    """One `npcs-node serve` subprocess; `ready` is set when it prints its address."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.log = root / "serve.log"
        self.address: str | None = None
        self.ready = threading.Event()
        self._stop_requested = False
        (root / "serve.port").unlink(missing_ok=True)
        log_handle = self.log.open("a", encoding="utf-8")
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, arguments built here
            [
                *node_command(),
                "serve",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--grace",
                str(SERVE_GRACE_SECONDS),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_handle,
            text=True,
        )
        log_handle.close()  # the child holds its own copy of the descriptor
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"npcs-demo-{name}", daemon=True
        )
        self._reader.start()

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        with self.log.open("a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if line.startswith("listening on "):
                    self.address = line.removeprefix("listening on ").strip()
                    self.ready.set()
        self.ready.set()  # EOF: the process ended; wait_ready reports how

    def wait_ready(self, timeout: float) -> str:
        if not self.ready.wait(timeout):
            raise DemoError(
                f"node {self.name} did not start within {timeout:.0f} s; see {self.log}"
            )
        if self.address is None:
            code = self.process.wait()
            raise DemoError(
                f"node {self.name} exited (code {code}) before listening: "
                f"{_last_line(self.log.read_text(encoding='utf-8'))}; see {self.log}"
            )
        return self.address

    def request_stop(self) -> None:
        """SIGTERM once: a second one would cut the node's graceful shutdown short."""
        if not self._stop_requested and self.process.poll() is None:
            self._stop_requested = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed. Returns the exit code."""
        self.request_stop()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=SERVE_GRACE_SECONDS + STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=STOP_GRACE_SECONDS)
        return self.process.returncode


# --- set-up ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    @property
    def analyst(self) -> CredentialPaths:
        return CredentialPaths(self.root / "analyst")

    @property
    def auditor(self) -> CredentialPaths:
        return CredentialPaths(self.root / "auditor")

    @property
    def nodes(self) -> Path:
        return self.root / "nodes"

    def node(self, name: str) -> Path:
        return self.nodes / name

    @property
    def config(self) -> Path:
        return self.root / "partnership.toml"

    @property
    def results(self) -> Path:
        return self.root / RESULTS_DIR


def prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="npcs-demo-"))
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise DemoError(
            f"{workdir} already exists and is not an empty folder: pass a new folder to "
            "--workdir (the demo never overwrites a partnership)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def create_partnership_pki(layout: Layout) -> CertificateAuthority:
    init_ca(layout.ca, PARTNERSHIP)
    authority = CertificateAuthority.load(layout.ca)
    issue_person_credentials(authority, role="analyst", name=ANALYST, out_dir=layout.analyst.root)
    issue_person_credentials(authority, role="auditor", name=AUDITOR, out_dir=layout.auditor.root)
    return authority


@dataclass(frozen=True)
class ProvisionedNode:
    jurisdiction: Jurisdiction
    root: Path
    rows: dict[str, int]


def provision_node(
    layout: Layout,
    authority: CertificateAuthority,
    jurisdiction: Jurisdiction,
    feed: DatabaseFeed | None = None,
) -> ProvisionedNode:
    """What a jurisdiction's IT runs, as real `npcs-node` subprocesses."""
    from kernel.keyfiles import certificate_pem, write_public_file

    root = layout.node(jurisdiction.name)
    log = layout.nodes / f"{jurisdiction.name}.setup.log"
    run_node_cli(
        ["init", str(root), "--name", jurisdiction.name, "--partnership", PARTNERSHIP], log
    )
    # The CA operator signs the node's CSR (the node's private key never leaves it).
    issued = authority.sign_csr(
        load_csr(root / "keys" / "tls.csr"), role="node", name=jurisdiction.name
    )
    certificate = layout.nodes / f"{jurisdiction.name}.crt"
    write_public_file(certificate, certificate_pem(issued.certificate))
    run_node_cli(
        ["install-cert", str(root), str(certificate), "--ca", str(layout.ca / "ca.crt")], log
    )
    synth_args = [
        "--children",
        str(jurisdiction.children),
        "--years",
        f"{FIRST_YEAR}-{LAST_YEAR}",
        "--seed",
        str(jurisdiction.seed),
    ]
    if feed is not None:  # the agency's database, read by `npcs-node refresh`
        try:
            rows = feed.feed(root, run_node_cli, log, synth_args)
        except DatabaseFeedError as exc:
            raise DemoError(str(exc)) from None
    else:
        summary = run_node_cli(["synth", str(root), *synth_args, "--format", "json"], log)
        rows = {dataset: int(facts["rows"]) for dataset, facts in json.loads(summary).items()}
    configure_node(root)
    return ProvisionedNode(jurisdiction, root, rows)


def configure_node(root: Path) -> None:
    """Allow the demo analyst and budget the showcase queries, in node.toml.

    Edits the file as the node's operator would (NodeSettings' documented keys, see
    node/settings.py); the coordinator never imports node code.
    """
    path = root / "node.toml"
    settings = tomllib.loads(path.read_text(encoding="utf-8"))
    settings["allowed_analysts"] = [ANALYST]
    budget = settings.setdefault("budget", {})
    budget["max_rho_per_query"] = NODE_MAX_RHO_PER_QUERY
    totals = budget.setdefault("total_rho_per_dataset", {})
    for dataset in (*totals, *DATASETS):
        totals[dataset] = NODE_BUDGET_RHO
    text = "# npcs-federation node settings (NodeSettings, node/settings.py); set by `npcs demo`.\n"
    text += toml_document(settings)
    tomllib.loads(text)  # never write a file that would not load back
    path.write_text(text, encoding="utf-8")


def toml_document(table: dict[str, object], prefix: str = "") -> str:
    """A TOML document for plain settings: keys first, then each sub-table."""
    lines = [
        f"{_toml_key(key)} = {_toml_value(value)}"
        for key, value in table.items()
        if not isinstance(value, dict)
    ]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in table.items():
        if isinstance(value, dict):
            name = f"{prefix}{_toml_key(key)}"
            text += f"\n[{name}]\n" + toml_document(value, f"{name}.")
    return text


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise DemoError(f"node.toml holds a value the demo cannot rewrite: {value!r}")


def identity_files(paths: CredentialPaths) -> IdentityFiles:
    return IdentityFiles(
        ca_certificate=paths.ca_cert,
        certificate=paths.tls_cert,
        tls_key=paths.tls_key,
        signing_key=paths.signing_key,
    )


def write_partnership(
    layout: Layout, addresses: dict[str, str], provisioned: Sequence[ProvisionedNode]
) -> Partnership:
    from privacy import tlog

    nodes = tuple(
        NodeEntry(
            name=node.jurisdiction.name,
            address=addresses[node.jurisdiction.name],
            ledger_key_fingerprint=tlog.key_fingerprint(
                tlog.load_public_key(node.root / "keys" / "ledger.pub")
            ),
        )
        for node in provisioned
    )
    partnership = Partnership(
        name=PARTNERSHIP, identity=identity_files(layout.analyst), nodes=nodes
    )
    save_partnership(partnership, layout.config)
    return partnership


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
        with _stop_on_sigterm():
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
        self.ask_questions(_analyst_session(self.layout, partnership), auditor)
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
                report = _ask(session, question)
                _check_answered(report)
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
            incidents_by_year_tables,
            psych_safety_table,
            recurrence_table,
            separations_table,
            sleep_table,
        )

        reports = self.outcome.reports
        renderables = [
            *incidents_by_year_tables(reports["incidents_by_year"]),
            cause_table(reports["fatality_causes"]),
            sleep_table(reports["sleep_related"]),
            recurrence_table(reports["recurrence"]),
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


def database_jurisdiction(jurisdictions: Sequence[Jurisdiction]) -> str:
    """The jurisdiction fed from the database: the first county (else the first)."""
    counties = [j for j in jurisdictions if j.kind == "county"]
    return (counties or list(jurisdictions))[0].name


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


def _analyst_session(layout: Layout, partnership: Partnership) -> Session:
    from coordinator.client import ClientCredentials
    from coordinator.fanout import FanoutSettings
    from coordinator.results import ResultsStore

    return Session(
        partnership=partnership,
        credentials=ClientCredentials.load(partnership.identity),
        settings=FanoutSettings(timeout=QUERY_TIMEOUT_SECONDS),
        store=ResultsStore(layout.root / "analyst" / "results.sqlite"),
    )


def _ask(session: Session, question: Question) -> Report:
    from coordinator.cli.query_args import build_query
    from coordinator.querying import run_query

    spec = build_query(
        statistic=question.statistic,
        dataset=question.dataset,
        column=question.column,
        by=question.by,
        where=question.where,
        date_from=str(FIRST_YEAR),
        date_to=str(LAST_YEAR),
        rho=question.rho,
        purpose=question.purpose,
    )
    return run_query(session, session.partnership.nodes, spec)


def _check_answered(report: Report) -> None:
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
            identity=identity_files(layout.auditor),
            nodes=partnership.nodes,
        )
        self.credentials = ClientCredentials.load(self.partnership.identity)
        self.memory_path = layout.auditor.root / "audit_checkpoints.json"

    def audit(self) -> AuditReport:
        return audit_partnership(
            self.partnership,
            self.credentials,
            auditor=f"npcs://{PARTNERSHIP}/auditor/{AUDITOR}",
            memory=AuditMemory(self.memory_path),
            timeout=QUERY_TIMEOUT_SECONDS,
        )


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM to the demo unwinds like Ctrl-C, so the `finally` stops every node."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
