"""`npcs query`, `npcs nodes` and fan-out against real node servers on 127.0.0.1.

One partnership CA; nodes a, b, c with synthetic incidents; node "poor" whose incidents
budget is nearly gone; node "down", registered but not running.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result
from support_node import (
    FIRST_YEAR,
    LAST_YEAR,
    PARTNERSHIP,
    NodeWorld,
    _configure_node,
    _load_synthetic_data,
    make_node_world,
)

from coordinator.ca import CertificateAuthority, load_csr
from coordinator.cli import cli
from coordinator.client import ClientCredentials, NodeClient
from coordinator.fanout import FanoutSettings, query_node
from coordinator.partnership import load_partnership
from coordinator.report import PARTNERSHIP_SOURCE, Report
from kernel.keyfiles import certificate_pem, generate_ed25519_key, public_key_pem, write_public_file
from node.layout import NodePaths
from node.provision import init_node_folder, install_certificate
from node.server import running_node
from node.settings import load_settings
from node.store import DataStore, node_schema
from npcs.v1 import node_pb2 as pb
from privacy.budget import rho_to_units_ceil
from privacy.ledger.reader import LedgerReader
from privacy.opendp_setup import opendp
from privacy.plan import person_distance, plan_query
from privacy.query import ITEM_GROUP_COLUMN, PrivacyLoss, QuerySpec, Statistic
from privacy.release import Release
from privacy.schema import IMPROVEMENT_OPPORTUNITIES
from privacy.validate import QueryLimits, validate_query

YEARS = ["--by", "incident_date:year", "--from", str(FIRST_YEAR), "--to", str(LAST_YEAR)]


@dataclass(frozen=True)
class Partnership:
    world: NodeWorld
    nodes: dict[str, NodePaths]
    config: Path
    data_dir: Path

    def run(self, *args: str, config: Path | None = None) -> Result:
        runner = CliRunner(
            env={"NPCS_CONFIG": str(config or self.config), "NPCS_DATA_DIR": str(self.data_dir)}
        )
        return runner.invoke(cli, list(args), catch_exceptions=False)

    def ledger_size(self, node: str) -> int:
        with LedgerReader.open_existing(self.nodes[node].ledger_db) as reader:
            return reader.size()


def add_node(world: NodeWorld, name: str) -> NodePaths:
    node = init_node_folder(world.root / name, name=name, partnership=PARTNERSHIP)
    authority = CertificateAuthority.load(world.ca_dir)
    issued = authority.sign_csr(load_csr(node.tls_csr), role="node", name=name)
    (world.root / f"{name}.crt").write_bytes(certificate_pem(issued.certificate))
    install_certificate(node.root, world.root / f"{name}.crt", world.ca_dir / "ca.crt")
    _configure_node(node, revoked="0" * 64, extra_toml="")
    _load_synthetic_data(node, ("incidents",), 200_000)
    return node


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def partnership(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partnership]:
    world = make_node_world(tmp_path_factory.mktemp("coordinator"), node_name="a")
    nodes = {"a": world.node, "b": add_node(world, "b"), "c": add_node(world, "c")}
    nodes["poor"] = add_node(world, "poor")
    config = world.root / "partnership.toml"
    runner = CliRunner()
    init = runner.invoke(
        cli,
        [
            "partnership",
            "init",
            str(config),
            "--name",
            PARTNERSHIP,
            "--identity",
            str(world.alice.root),
        ],
    )
    assert init.exit_code == 0, init.output
    with ExitStack() as stack:
        poor_budget = {"total_rho_per_unit_kind": {"child": "0.001"}, "max_rho_per_query": "1"}
        for name, paths in nodes.items():
            overrides: dict[str, Any] = {"budget": poor_budget} if name == "poor" else {}
            running = stack.enter_context(running_node(paths.root, **overrides))
            added = runner.invoke(
                cli,
                [
                    "partnership",
                    "add-node",
                    str(config),
                    name,
                    running.address,
                    "--ledger-key",
                    str(paths.ledger_public_key),
                ],
            )
            assert added.exit_code == 0, added.output
        # A node that is never started still has its own ledger key (pins are unique).
        down_key = world.root / "down-ledger.pub"
        write_public_file(down_key, public_key_pem(generate_ed25519_key().public_key()))
        down = runner.invoke(
            cli,
            [
                "partnership",
                "add-node",
                str(config),
                "down",
                f"127.0.0.1:{free_port()}",
                "--ledger-key",
                str(down_key),
            ],
        )
        assert down.exit_code == 0, down.output
        yield Partnership(world, nodes, config, world.root / "data")


def test_query_over_three_nodes_returns_per_node_and_pooled_rows(
    partnership: Partnership, tmp_path: Path
) -> None:
    chart = tmp_path / "trend.png"
    result = partnership.run(
        "query",
        "count",
        "incidents",
        *YEARS,
        "--rho",
        "0.5",
        "--purpose",
        "annual trend",
        "--nodes",
        "a,b,c",
        "--format",
        "json",
        "--plot",
        str(chart),
    )
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.stdout)
    assert [s.node for s in report.nodes] == ["a", "b", "c"]
    assert all(s.answered and s.receipt == "verified" for s in report.nodes)
    years = [str(y) for y in range(FIRST_YEAR, LAST_YEAR + 1)]
    for year in years:
        rows = {r.source: r for r in report.rows if r.key == (year,)}
        assert set(rows) == {"a", "b", "c", PARTNERSHIP_SOURCE}
        pooled = rows[PARTNERSHIP_SOURCE]
        assert pooled.unbiased_estimate == pytest.approx(
            sum(rows[n].unbiased_estimate or 0 for n in "abc")
        )
        assert pooled.ci_low is not None
        assert pooled.ci_low < (pooled.value or 0)
        assert pooled.rate_per_100k is not None  # populations published by each node
    assert {t.source for t in report.trends} == {"a", "b", "c", PARTNERSHIP_SOURCE}
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = partnership.run("results", "show", report.result_id[:8], "--rate")
    print(table.stdout)
    assert "PARTNERSHIP" in table.stdout
    assert "slope / year" in table.stdout
    shown = partnership.run("results", "show", report.result_id, "--format", "json")
    assert Report.model_validate_json(shown.stdout) == report  # re-used at no cost


def test_receipt_that_does_not_verify_is_flagged_and_stored_unverified(
    partnership: Partnership, tmp_path: Path
) -> None:
    pinned_wrong = tmp_path / "wrong.pub"
    write_public_file(pinned_wrong, public_key_pem(generate_ed25519_key().public_key()))
    config = tmp_path / "partnership.toml"
    config.write_text(partnership.config.read_text())
    replaced = partnership.run(
        "partnership",
        "add-node",
        str(config),
        "b",
        load_partnership(partnership.config).node("b").address,
        "--ledger-key",
        str(pinned_wrong),
        "--replace",
    )
    assert replaced.exit_code == 0, replaced.output
    result = partnership.run(
        "query",
        "count",
        "incidents",
        "--rho",
        "0.01",
        "--purpose",
        "receipts",
        "--nodes",
        "a,b",
        config=config,
    )
    assert result.exit_code == 4
    assert "the ledger receipt from node b DID NOT VERIFY" in result.stdout
    listed = partnership.run("results", "list", "--format", "json")
    assert json.loads(listed.stdout)[0]["unverified_receipts"] == 1


def test_down_and_out_of_budget_nodes_are_reported_while_the_others_answer(
    partnership: Partnership,
) -> None:
    result = partnership.run(
        "query",
        "count",
        "incidents",
        "--rho",
        "0.01",
        "--purpose",
        "partial",
        "--nodes",
        "a,down,poor,c",
        "--format",
        "json",
    )
    assert result.exit_code == 3
    report = Report.model_validate_json(result.stdout)
    status = {s.node: s for s in report.nodes}
    assert status["a"].answered
    assert status["c"].answered
    assert status["down"].code == "UNREACHABLE"
    assert status["down"].reason
    assert "cannot reach" in status["down"].reason
    assert status["poor"].code == "RESOURCE_EXHAUSTED"
    assert status["poor"].reason
    assert "budget" in status["poor"].reason
    assert report.pooled_nodes == ("a", "c")


class _DroppedResponse(grpc.RpcError, grpc.Call):
    """What a client sees when the node's answer is lost on the way back."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection reset (simulated lost response)"

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class DropFirstQueryResponse(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Lets the first Query reach the node (which charges it), then loses its reply."""

    def __init__(self) -> None:
        self.dropped = 0

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)
        if details.method.endswith("/Query") and self.dropped == 0:
            outcome.result()  # the node has answered and committed the charge
            self.dropped += 1
            raise _DroppedResponse()
        return outcome


def test_retry_after_a_dropped_response_returns_the_same_answer_and_charges_once(
    partnership: Partnership,
) -> None:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="retry",
    )
    config = load_partnership(partnership.config)
    credentials = ClientCredentials.load(config.identity)
    before = partnership.ledger_size("a")
    interceptor = DropFirstQueryResponse()
    settings = FanoutSettings(timeout=30, retries=2, interceptors=(interceptor,))
    result = query_node(config.node("a"), credentials, spec, settings)
    assert interceptor.dropped == 1
    assert result.answer is not None
    assert result.receipt is not None
    assert result.attempts == 2
    assert result.answer.replayed  # answered from the ledger
    assert result.receipt.verified
    assert partnership.ledger_size("a") == before + 1  # charged once
    again = query_node(config.node("a"), credentials, spec, FanoutSettings(timeout=30))
    assert again.answer is not None
    assert again.answer.release_bytes == result.answer.release_bytes
    assert partnership.ledger_size("a") == before + 1


def test_dry_run_previews_cost_and_accuracy_and_charges_nothing(partnership: Partnership) -> None:
    before = {n: partnership.ledger_size(n) for n in "abc"}
    result = partnership.run(
        "query",
        "count",
        "incidents",
        *YEARS,
        "--rho",
        "0.2",
        "--purpose",
        "preview",
        "--nodes",
        "a,b,c",
        "--dry-run",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    preview = json.loads(result.stdout)
    assert preview["format"] == "npcs.preview.v1"
    assert {s["node"] for s in preview["nodes"] if s["cost_units"] > 0} == {"a", "b", "c"}
    sources = {row["source"] for row in preview["expected"]}
    assert sources == {"a", "b", "c", PARTNERSHIP_SOURCE}
    assert all(row["ci_half_width"] > 0 for row in preview["expected"])
    assert {n: partnership.ledger_size(n) for n in "abc"} == before


def test_accuracy_target_yields_intervals_no_wider_than_asked(partnership: Partnership) -> None:
    result = partnership.run(
        "query",
        "count",
        "incidents",
        *YEARS,
        "--accuracy",
        "8",
        "--purpose",
        "accuracy",
        "--nodes",
        "a,b",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.stdout)
    node_rows = [r for r in report.rows if r.source in ("a", "b")]
    assert node_rows
    for row in node_rows:
        assert row.ci_low is not None
        assert row.ci_high is not None
        assert (row.ci_high - row.ci_low) / 2 <= 8 * (1 + 1e-9)


def test_nodes_command_shows_reachability_budget_and_checkpoint(partnership: Partnership) -> None:
    result = partnership.run("nodes", "--format", "json", "--timeout", "5")
    assert result.exit_code == 3  # "down" is unreachable
    rows = {row["name"]: row for row in json.loads(result.stdout)["nodes"]}
    assert rows["down"]["reachable"] is False
    assert rows["down"]["problem"]["code"] == "UNREACHABLE"
    assert rows["a"]["reachable"] is True
    assert "incidents" in rows["a"]["remaining_rho"]
    child = rows["a"]["budget_per_unit_kind"]["child"]
    assert child["datasets"] == ["incidents", "reports"]
    assert child["remaining_rho"] == rows["a"]["remaining_rho"]["incidents"]
    assert float(child["spent_epsilon"]) >= 0
    assert rows["poor"]["budget_per_unit_kind"]["child"]["total_rho"] == "0.001"
    assert rows["a"]["ledger_key_pinned"] is True
    assert rows["a"]["checkpoint"] is None or rows["a"]["checkpoint"]["signature_verified"]
    table = partnership.run("nodes", "--nodes", "a,down", "--timeout", "5")
    assert "UNREACHABLE" in table.stdout
    assert "remaining rho" in table.stdout
    assert "child (incidents, reports): spent rho " in table.stdout


def test_schema_with_node_info_shows_each_nodes_domains_and_populations(
    partnership: Partnership,
) -> None:
    result = partnership.run(
        "schema", "reports", "--nodes-info", "--nodes", "a,b", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document["child_population"]) == {"a", "b"}
    assert all(document["child_population"]["a"].values())
    (dataset,) = document["datasets"]
    assert set(dataset["node_domains"]) == {"a", "b"}  # each node's own county codes
    table = partnership.run("schema", "reports", "--nodes-info", "--nodes", "a,b")
    assert "Child population published by each node" in table.stdout


def exact_yearly_counts(node: NodePaths) -> dict[str, int]:
    """The true counts behind the releases, from the synthetic source file (test only)."""
    import polars as pl

    frame = pl.read_parquet(node.root / "incidents-synthetic.parquet")
    counts = frame.group_by(pl.col("incident_date").dt.year().alias("year")).len()
    return {str(year): int(n) for year, n in counts.iter_rows()}


@pytest.mark.slow
def test_pooled_intervals_of_real_releases_cover_the_true_totals(
    partnership: Partnership,
) -> None:
    """End to end: 3 nodes x 5 years x 40 queries; pooled 95% intervals cover ~95%."""
    truth = {
        year: sum(exact_yearly_counts(partnership.nodes[n])[year] for n in "abc")
        for year in (str(y) for y in range(FIRST_YEAR, LAST_YEAR + 1))
    }
    covered = trials = 0
    for _ in range(40):
        result = partnership.run(
            "query", "count", "incidents", *YEARS, "--rho", "0.005", "--purpose", "coverage",
            "--nodes", "a,b,c", "--format", "json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        for row in Report.model_validate_json(result.stdout).rows:
            if row.source == PARTNERSHIP_SOURCE:
                assert row.ci_low is not None
                assert row.ci_high is not None
                covered += row.ci_low <= truth[row.key[0]] <= row.ci_high
                trials += 1
    assert trials == 200
    # 4 standard errors around 0.95 (fixed alpha ~ 6e-5): [0.89, 1.0]
    assert abs(covered / trials - 0.95) <= 4 * (0.95 * 0.05 / trials) ** 0.5


class RecordRoundTrips(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """For each call, when it was sent: the methods whose answers had been read by then."""

    def __init__(self) -> None:
        self.read: list[str] = []
        self.sent: list[tuple[str, tuple[str, ...]]] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.rsplit("/", 1)[1]
        self.sent.append((method, tuple(self.read)))
        return _ReadRecorder(continuation(details, request), method, self.read)


class _ReadRecorder:
    def __init__(self, call: Any, method: str, read: list[str]) -> None:
        self._call, self._method, self._read = call, method, read

    def result(self, timeout: float | None = None) -> Any:
        outcome = self._call.result(timeout)
        self._read.append(self._method)
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


def test_a_node_query_is_two_sequential_round_trips_with_every_check_kept(
    partnership: Partnership,
) -> None:
    config = load_partnership(partnership.config)
    credentials = ClientCredentials.load(config.identity)
    recorder = RecordRoundTrips()
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="round trips",
    )
    result = query_node(
        config.node("a"), credentials, spec, FanoutSettings(interceptors=(recorder,))
    )
    # The Preview carries the node's description (no Describe call); the signed Query
    # waits for it.
    assert recorder.sent == [("Preview", ()), ("Query", ("Preview",))]
    assert result.answer is not None
    assert result.receipt is not None
    assert result.receipt.verified  # receipt checked against the pinned ledger key
    assert result.description is not None
    with NodeClient(config.node("a"), credentials) as client:
        described = client.describe()
    assert result.description.node_name == described.node_name == "a"
    assert result.description.schema == described.schema
    assert result.description.child_population == described.child_population
    assert result.description.ledger_public_key_pem == described.ledger_public_key_pem
    assert result.cost_units == 10_000


class PreviewWithoutDescription(RecordRoundTrips):
    """A node that predates the folded Describe: its Preview answers carry no description."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        call = super().intercept_unary_unary(continuation, details, request)
        return _WithoutDescription(call) if details.method.endswith("/Preview") else call


class _WithoutDescription(_ReadRecorder):
    def __init__(self, call: Any) -> None:
        self._call = call

    def result(self, timeout: float | None = None) -> Any:
        answer = pb.PreviewResponse()
        answer.CopyFrom(self._call.result(timeout))
        answer.ClearField("description")
        return answer


def test_a_node_that_answers_preview_without_its_description_is_asked_describe(
    partnership: Partnership,
) -> None:
    config = load_partnership(partnership.config)
    credentials = ClientCredentials.load(config.identity)
    recorder = PreviewWithoutDescription()
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="an older node",
    )
    result = query_node(
        config.node("a"), credentials, spec, FanoutSettings(interceptors=(recorder,))
    )
    assert recorder.sent == [
        ("Preview", ()),
        ("Describe", ("Preview",)),
        ("Query", ("Preview", "Describe")),
    ]
    assert result.receipt is not None
    assert result.receipt.verified
    assert result.description is not None


def test_a_node_whose_ledger_key_is_not_the_pinned_one_is_still_flagged(
    partnership: Partnership,
) -> None:
    config = load_partnership(partnership.config)
    credentials = ClientCredentials.load(config.identity)
    entry = replace(config.node("a"), ledger_key_fingerprint="0" * 64)
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="pinning",
    )
    result = query_node(entry, credentials, spec, FanoutSettings())
    assert result.receipt is not None
    assert not result.receipt.verified
    assert result.ledger_key_problem is not None
    assert "pins" in result.ledger_key_problem


def test_rates_by_race_over_real_nodes_use_each_nodes_group_population(
    partnership: Partnership,
) -> None:
    from node.populations import save_populations
    from node.synth import group_populations

    # a and b publish populations by group (what `npcs-node population import` stores);
    # c publishes none, so its rates by race are left out and the output says why.
    for name, children in (("a", 400_000), ("b", 200_000)):
        save_populations(partnership.nodes[name], group_populations(children, 2021, 2021))
    result = partnership.run(
        "query", "count", "incidents", "--by", "race_ethnicity",
        "--from", "2021", "--to", "2021", "--rho", "0.5",
        "--purpose", "rates by race", "--nodes", "a,b,c", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.stdout)
    tables = {n: group_populations(c, 2021, 2021) for n, c in (("a", 400_000), ("b", 200_000))}
    for row in report.rows:
        (race,) = row.key
        if row.source in tables and race != "unknown":
            assert row.population == tables[row.source].lookup("2021", "race_ethnicity", race)
            assert row.rate_per_100k is not None
        else:
            assert row.rate_per_100k is None  # c, the pooled rows (c lacks one), unknown
    assert "c: rate left out where the node publishes no population by race_ethnicity" in (
        report.rate_notes
    )
    shown = partnership.run("results", "show", report.result_id, "--rate")
    assert "No rate: c: rate left out where the node publishes no population" in shown.stdout


def test_share_and_disparity_queries_read_one_count_per_node_and_pooled(
    partnership: Partnership, tmp_path: Path
) -> None:
    from coordinator.disparity import DisparityResult
    from coordinator.shares import SharesResult
    from node.populations import save_populations
    from node.synth import group_populations

    shares = partnership.run(
        "query", "share", "incidents", "--of", "sleep_related", "--by", "incident_type",
        "--from", "2021", "--to", "2021", "--rho", "0.5",
        "--purpose", "sleep-related share", "--nodes", "a,b", "--format", "json",
    )  # fmt: skip
    assert shares.exit_code == 0, shares.output
    document = SharesResult.model_validate_json(shares.stdout)
    assert document.of_column == "sleep_related"
    assert {row.source for row in document.rows} == {"a", "b", PARTNERSHIP_SOURCE}
    # The shares read the stored count: the same numbers come back at no cost.
    again = partnership.run("results", "share", document.result_id, "--of", "sleep_related")
    assert again.exit_code == 0, again.output
    assert "PARTNERSHIP" in again.stdout
    for name in ("a", "b"):
        save_populations(partnership.nodes[name], group_populations(300_000, 2021, 2021))
    forest = tmp_path / "forest.png"
    disparity = partnership.run(
        "query", "disparity", "incidents", "--from", "2021", "--to", "2021", "--rho", "0.5",
        "--purpose", "disparity", "--nodes", "a,b", "--format", "json", "--plot", str(forest),
    )  # fmt: skip
    assert disparity.exit_code == 0, disparity.output
    result = DisparityResult.model_validate_json(disparity.stdout)
    assert result.reference == "white"
    pooled_white = next(
        row for row in result.rows if row.source == PARTNERSHIP_SOURCE and row.group == "white"
    )
    assert pooled_white.rate_ratio == 1.0
    assert forest.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = partnership.run(
        "query", "share", "incidents", "--by", "incident_type", "--rho", "0.5",
        "--purpose", "no column", "--nodes", "a,b",
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "needs --of COLUMN" in refused.output


def test_a_multi_item_count_is_one_release_and_one_ledger_entry_per_node(
    partnership: Partnership,
) -> None:
    items = tuple(name for name, _ in IMPROVEMENT_OPPORTUNITIES)
    before = {n: partnership.ledger_size(n) for n in "ab"}
    arguments = ("query", "count", "incidents", "--items", "io_*", *YEARS, "--rho", "0.3")
    asked = (*arguments, "--purpose", "improvement opportunities", "--nodes", "a,b")
    preview = json.loads(partnership.run(*asked, "--dry-run", "--format", "json").stdout)
    expected = {(row["source"], row["name"]) for row in preview["expected"]}
    assert expected == {
        (source, f"{item}:count") for source in ("a", "b", PARTNERSHIP_SOURCE) for item in items
    }
    assert {n: partnership.ledger_size(n) for n in "ab"} == before  # a preview is free
    result = partnership.run(*asked, "--format", "json")
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.stdout)
    assert report.group_columns == ("incident_date:year", ITEM_GROUP_COLUMN)
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        for item in items:
            rows = {r.source: r for r in report.rows if r.key == (str(year), item)}
            assert set(rows) == {"a", "b", PARTNERSHIP_SOURCE}
            assert rows[PARTNERSHIP_SOURCE].unbiased_estimate == pytest.approx(
                sum(rows[n].unbiased_estimate or 0 for n in "ab")
            )
    assert {n: partnership.ledger_size(n) for n in "ab"} == {n: before[n] + 1 for n in "ab"}

    # The charge, recomputed from the query the ledger logged, is OpenDP's map.
    node = partnership.nodes["a"]
    with LedgerReader.open_existing(node.ledger_db) as reader:
        (entry,) = reader.entries(before["a"])
    logged = QuerySpec.from_canonical_bytes(entry.canonical_query)
    assert logged.items == items
    schema = node_schema(load_settings(node.root))
    snapshot = DataStore(node, schema).current("incidents")
    assert snapshot is not None
    limits = QueryLimits(max_rho_units_per_query=entry.cost_units)
    built = plan_query(validate_query(logged, schema, limits), schema, snapshot.path)
    assert entry.cost_units == rho_to_units_ceil(built._measurement.map(person_distance(opendp())))
    assert entry.cost_units <= 300_000
    years = LAST_YEAR - FIRST_YEAR + 1
    assert len(Release.from_bytes(entry.answer).cells) == years * len(items)

    shown = partnership.run("results", "show", report.result_id, "--format", "csv")
    assert f"|{LAST_YEAR}|io_resources|" in shown.stdout.replace(",", "|")


def test_quantile_value_intervals_and_poisson_intervals_through_real_nodes(
    partnership: Partnership,
) -> None:
    asked = (
        "query",
        "quantiles",
        "incidents",
        "child_age_months",
        "--quantiles",
        "0.1,0.25,0.5,0.75,0.9",
        "--value-intervals",
        "--rho",
        "0.5",
        "--purpose",
        "age profile",
        "--nodes",
        "a,b",
        "--format",
        "json",
    )
    preview = json.loads(partnership.run(*asked, "--dry-run").stdout)
    assert {row["name"] for row in preview["expected"] if row["source"] == "a"} >= {"count"}
    result = partnership.run(*asked)
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.stdout)
    assert report.query["quantile_count"] is True
    # each node read the wire field and released the count with its quantiles
    counts = {row.source for row in report.rows if row.name == "count"}
    assert counts == {"a", "b", PARTNERSHIP_SOURCE}
    medians = [row for row in report.rows if row.name == "q0.5"]
    assert len(medians) == 2
    for row in medians:
        assert row.ci_low is not None
        assert row.ci_high is not None
        assert row.value is not None
        assert row.ci_low <= row.value <= row.ci_high
    poisson = partnership.run(
        "results", "show", report.result_id, "--interval", "dp+poisson", "--format", "json"
    )
    assert poisson.exit_code == 2  # quantiles have no Poisson model: refused, says why
    assert "applies to count and histogram" in poisson.output
    counted = partnership.run(
        "query", "count", "incidents", *YEARS, "--rho", "0.2", "--purpose", "risk",
        "--nodes", "a,b,c", "--interval", "dp+poisson", "--format", "json",
    )  # fmt: skip
    assert counted.exit_code == 0, counted.output
    widened = Report.model_validate_json(counted.stdout)
    assert widened.interval == "dp+poisson"
    stored = partnership.run("results", "show", widened.result_id, "--format", "json")
    plain = Report.model_validate_json(stored.stdout)
    assert plain.interval == "dp"
    for before, after in zip(plain.rows, widened.rows, strict=True):
        assert before.ci_high is not None
        assert after.ci_high is not None
        assert after.ci_high > before.ci_high
