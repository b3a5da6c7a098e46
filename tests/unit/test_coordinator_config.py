"""partnership.toml written by `npcs partnership`, query arguments, results store,
and the coordinator's import purity (never polars or opendp)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_coordinator_pooling import three_node_report

from coordinator.ca import CertificateAuthority, init_ca, issue_person_credentials
from coordinator.cli import cli
from coordinator.cli.query_args import QueryArgumentError, build_query
from coordinator.partnership import (
    IdentityFiles,
    Partnership,
    PartnershipError,
    load_partnership,
    render_toml,
)
from coordinator.results import ResultNotFoundError, ResultsStore
from kernel.keyfiles import generate_ed25519_key, public_key_pem, write_public_file
from privacy import tlog
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    TimeBucket,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def identity_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca", "midwest")
    issue_person_credentials(
        CertificateAuthority.load(root / "ca"), role="analyst", name="ana", out_dir=root / "ana"
    )
    return root / "ana"


def ledger_key_file(tmp_path: Path) -> tuple[Path, str]:
    key = generate_ed25519_key().public_key()
    path = tmp_path / "ledger.pub"
    write_public_file(path, public_key_pem(key))
    return path, tlog.key_fingerprint(key)


def test_partnership_init_and_add_node_write_a_file_that_reads_back(
    identity_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "partnership.toml"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["partnership", "init", str(config), "--name", "midwest", "--identity", str(identity_dir)],
    )
    assert result.exit_code == 0, result.output
    pub, fingerprint = ledger_key_file(tmp_path)
    result = runner.invoke(
        cli,
        [
            "partnership",
            "add-node",
            str(config),
            "state-a",
            "192.0.2.5:50051",
            "--ledger-key",
            str(pub),
        ],
    )
    assert result.exit_code == 0, result.output
    partnership = load_partnership(config)
    assert partnership.name == "midwest"
    assert partnership.identity.signing_key == identity_dir.resolve() / "signing.key"
    (node,) = partnership.nodes
    assert (node.name, node.address, node.ledger_key_fingerprint) == (
        "state-a",
        "192.0.2.5:50051",
        fingerprint,
    )
    assert render_toml(partnership) == config.read_text()
    again = runner.invoke(
        cli,
        [
            "partnership",
            "add-node",
            str(config),
            "state-a",
            "192.0.2.6:9",
            "--ledger-key",
            str(pub),
        ],
    )
    assert again.exit_code != 0
    assert "already in the partnership" in again.output


def test_partnership_init_refuses_an_identity_of_another_partnership(
    identity_dir: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "partnership",
            "init",
            str(tmp_path / "p.toml"),
            "--name",
            "other",
            "--identity",
            str(identity_dir),
        ],
    )
    assert result.exit_code != 0
    assert "for partnership 'midwest'" in result.output


def test_bad_partnership_files_get_errors_naming_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PartnershipError, match="npcs partnership init"):
        load_partnership(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text('format_version = 1\nname = "p"\n[identity]\nca_certificate = "x"\n')
    with pytest.raises(PartnershipError, match="`certificate` must be a non-empty string"):
        load_partnership(bad)


def test_toml_strings_escape_quotes_backslashes_and_controls() -> None:
    import tomllib

    text = 'a "quoted" \\ path\twith\ncontrols'
    files = IdentityFiles(Path(text), Path(text), Path(text), Path(text))
    toml = render_toml(Partnership(name="midwest", identity=files))
    assert tomllib.loads(toml)["identity"]["certificate"] == text


def test_query_arguments_become_structured_filters_never_sql() -> None:
    spec = build_query(
        statistic="count",
        dataset="incidents",
        column=None,
        by="sex,incident_date:fiscal_year:7",
        where="sex=female,male;child_age_months=0..11;sleep_related=true",
        date_from="2019",
        date_to="2023-06",
        rho="0.05",
        purpose="trend",
    )
    assert spec.group_by == (
        GroupByColumn(column="sex"),
        GroupByTime(
            column="incident_date", bucket=TimeBucket.FISCAL_YEAR, fiscal_year_start_month=7
        ),
    )
    assert spec.filters == (
        InSetFilter(column="sex", values=("female", "male")),
        NumericRangeFilter(column="child_age_months", low=0, high=11),
        InSetFilter(column="sleep_related", values=(True,)),
        DateRangeFilter(column="incident_date", start=date(2019, 1, 1), end=date(2023, 6, 30)),
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"where": "nosuch=1"}, "unknown column of incidents 'nosuch'"),
        ({"where": "sex>female"}, "must be COLUMN="),
        ({"by": "incident_date:week"}, "is not one of"),
        ({"by": "incident_date:year", "date_from": None, "date_to": None}, "needs --from and --to"),
        ({"rho": None}, "exactly one of --rho"),
        ({"accuracy": 2.0}, "exactly one of --rho"),
        ({"column": "child_age_months"}, "count takes no COLUMN"),
        ({"date_from": "2020-13-01"}, "is not a date"),
        # the nodes' own validation runs before any node is contacted
        ({"dataset": "incidentz"}, "unknown dataset 'incidentz'"),
        ({"by": "sexx"}, "--by: unknown column of incidents 'sexx'; did you mean 'sex'"),
        ({"where": "sex=femal"}, "unknown value of sex 'femal'; did you mean 'female'"),
        ({"statistic": "sum", "column": "sex"}, "needs a numeric"),
    ],
)
def test_bad_query_arguments_are_refused_with_a_clear_message(
    overrides: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "statistic": "count",
        "dataset": "incidents",
        "column": None,
        "date_from": "2019",
        "date_to": "2020",
        "rho": "0.1",
        "purpose": "p",
    }
    arguments.update(overrides)
    with pytest.raises(QueryArgumentError, match=message):
        build_query(**arguments)  # type: ignore[arg-type]


def test_queries_on_node_declared_domains_are_left_to_the_nodes() -> None:
    """Only a node knows its county list, so the coordinator does not judge county values."""
    spec = build_query(
        statistic="count",
        dataset="incidents",
        column=None,
        by="county",
        where="county=c001",
        rho="0.1",
        purpose="p",
    )
    assert spec.group_by[0].column == "county"


def test_results_store_keeps_reports_and_answers(tmp_path: Path) -> None:
    from coordinator.results import StoredAnswer

    store = ResultsStore(tmp_path / "results.sqlite")
    report = three_node_report().model_copy(update={"result_id": str(uuid.uuid4())})
    store.save(report, [StoredAnswer("a", b'{"x":1}', {"entry_index": 3}, True)])
    assert store.report(store.resolve_id(report.result_id[:8])) == report
    (answer,) = store.answers(report.result_id)
    assert (answer.release_bytes, answer.receipt, answer.receipt_verified) == (
        b'{"x":1}',
        {"entry_index": 3},
        True,
    )
    assert [s.result_id for s in store.list_results()] == [report.result_id]
    with pytest.raises(ResultNotFoundError):
        store.resolve_id("zzzz")


def test_service_errors_reach_the_user_as_click_errors(identity_dir: Path, tmp_path: Path) -> None:
    """A bad value is a usage error of the command that got it (exit 2); a set-up problem
    or a missing result is one line saying what to do (exit 1); never a traceback."""
    config = tmp_path / "partnership.toml"
    runner = CliRunner(env={"NPCS_DATA_DIR": str(tmp_path / "data")})
    created = runner.invoke(
        cli,
        ["partnership", "init", str(config), "--name", "midwest", "--identity", str(identity_dir)],
    )
    assert created.exit_code == 0, created.output

    unknown = runner.invoke(cli, ["nodes", "--nodes", "nosuch", "--config", str(config)])
    assert unknown.exit_code == 2, unknown.output
    assert "Usage: cli nodes [OPTIONS]" in unknown.output  # CliRunner names the program cli
    assert "Error: node 'nosuch' is not in partnership 'midwest'" in unknown.output

    zero = runner.invoke(cli, ["nodes", "--timeout", "0", "--config", str(config)])
    assert zero.exit_code == 2, zero.output
    assert "Error: --timeout must be a positive number of seconds" in zero.output

    absent = runner.invoke(cli, ["nodes", "--config", str(tmp_path / "absent.toml")])
    assert absent.exit_code == 1, absent.output
    assert absent.output.startswith("Error: no partnership file at ")

    missing = runner.invoke(cli, ["results", "show", "zzzz"])
    assert missing.exit_code == 1, missing.output
    assert missing.output == (
        "Error: no stored result has an id starting 'zzzz': see `npcs results list`\n"
    )


def test_results_cli_shows_and_exports_stored_results(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    report = three_node_report().model_copy(update={"result_id": str(uuid.uuid4())})
    store.save(report, [])
    runner = CliRunner(env={"NPCS_DATA_DIR": str(tmp_path)})
    listed = runner.invoke(cli, ["results", "list"])
    assert report.result_id[:8] in listed.output
    shown = runner.invoke(cli, ["results", "show", report.result_id[:8], "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["result_id"] == report.result_id
    exported = runner.invoke(cli, ["results", "export", report.result_id])
    assert json.loads(exported.output)["format"] == "npcs.export.v1"


def test_no_coordinator_module_imports_polars_or_opendp() -> None:
    modules = sorted(
        f"coordinator.{path.stem}"
        for path in (REPO / "coordinator").glob("*.py")
        if path.stem != "__init__"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('polars', 'opendp'))\n"
        "print(','.join(bad))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert completed.stdout.strip() == "", f"coordinator imported: {completed.stdout}"
