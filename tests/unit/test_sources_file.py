"""The sources file, database passwords and the column check, before any database is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.credentials import database_password
from node.source_mapping import check_query_columns
from node.sources_file import DatabaseSource, SourceError, load_sources
from node.sql_failures import DriverError, Failure, Phase, classify, scrub
from privacy.schema import PARTNERSHIP_SCHEMA

WORKFORCE = PARTNERSHIP_SCHEMA.dataset("workforce")


def write_sources(folder: Path, text: str) -> Path:
    path = folder / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
[databases.casework]
url = "postgresql://npcs_reader@db.example:5432/ccwis"
password_env = "CASEWORK_PASSWORD"
row_limit = 1000

[datasets.workforce]
database = "casework"
query = "SELECT * FROM hr.worker_months;"
"""


def test_a_sources_file_maps_datasets_to_queries_with_safe_defaults(tmp_path: Path) -> None:
    sources = load_sources(write_sources(tmp_path, GOOD))
    database = sources.databases["casework"]
    assert database.read_only is True
    assert database.statement_timeout_seconds == 600
    assert database.row_limit == 1000
    assert sources.datasets["workforce"].query == "SELECT * FROM hr.worker_months"


def test_a_password_in_the_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    text = GOOD.replace("npcs_reader@", "npcs_reader:Hunter2secret@")
    with pytest.raises(SourceError) as raised:
        load_sources(write_sources(tmp_path, text))
    message = str(raised.value)
    assert "databases.casework.url" in message
    assert "contains a password" in message
    assert "password_env" in message
    assert "Hunter2secret" not in message


def test_a_password_in_the_url_query_is_refused_too(tmp_path: Path) -> None:
    text = GOOD.replace("5432/ccwis", "5432/ccwis?password=Hunter2secret")
    with pytest.raises(SourceError, match="contains a password") as raised:
        load_sources(write_sources(tmp_path, text))
    assert "Hunter2secret" not in str(raised.value)


def test_a_dataset_naming_an_unknown_database_gets_a_suggestion(tmp_path: Path) -> None:
    typo = GOOD.replace('database = "casework"', 'database = "casewrok"')
    with pytest.raises(SourceError, match=r"'casewrok'.*did you mean casework\?"):
        load_sources(write_sources(tmp_path, typo))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(("row_limit = 1000", "row_limit = 0"), "row_limit", id="row-limit"),
        pytest.param(("row_limit = 1000", "read_only = 'maybe'"), "read_only", id="read-only"),
        pytest.param(("hr.worker_months;", "a; DROP TABLE b"), "one SELECT", id="two-statements"),
        pytest.param(("postgresql://", "not a url "), "not a database URL", id="bad-url"),
        pytest.param(
            ('password_env = "CASEWORK_PASSWORD"', 'password_env = "X"\npassword_file = "f"'),
            "not both",
            id="two-passwords",
        ),
    ],
)
def test_invalid_fields_are_named_with_what_to_do(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    with pytest.raises(SourceError, match=expected):
        load_sources(write_sources(tmp_path, GOOD.replace(*change)))


def test_a_missing_sources_file_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="map each dataset to a database query"):
        load_sources(tmp_path / "sources.toml")


def source(**fields: object) -> DatabaseSource:
    return DatabaseSource.model_validate({"url": "postgresql://reader@db/ccwis", **fields})


def test_the_password_comes_from_the_named_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEWORK_PASSWORD", "s3cret")
    assert database_password("casework", source(password_env="CASEWORK_PASSWORD"), tmp_path) == (
        "s3cret"
    )
    monkeypatch.delenv("CASEWORK_PASSWORD")
    with pytest.raises(SourceError, match="CASEWORK_PASSWORD, which is not set"):
        database_password("casework", source(password_env="CASEWORK_PASSWORD"), tmp_path)


def test_a_password_file_must_be_private_to_the_node_user(tmp_path: Path) -> None:
    secret = tmp_path / "casework.password"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o644)
    with pytest.raises(SourceError, match=r"mode 0644.*chmod 600"):
        database_password("casework", source(password_file="casework.password"), tmp_path)
    secret.chmod(0o600)
    got = database_password("casework", source(password_file="casework.password"), tmp_path)
    assert got == "s3cret"


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"absent\.pw does not exist"):
        database_password("casework", source(password_file=str(tmp_path / "absent.pw")), tmp_path)


def test_no_password_configured_means_none(tmp_path: Path) -> None:
    assert database_password("casework", source(), tmp_path) is None


def test_matching_columns_pass_and_derived_columns_are_optional() -> None:
    columns = list(WORKFORCE.column_names)
    check_query_columns(WORKFORCE, columns, frozenset(), "q")
    reports = PARTNERSHIP_SCHEMA.dataset("reports")
    without = [c for c in reports.column_names if c != "recurrence_12m"]
    check_query_columns(reports, without, frozenset({"recurrence_12m"}), "q")


def test_misspelt_missing_and_repeated_columns_are_each_named_with_a_suggestion() -> None:
    columns = [c for c in WORKFORCE.column_names if c not in ("tenure_months", "unit")]
    columns += ["tenure_month", "role"]
    with pytest.raises(SourceError) as raised:
        check_query_columns(WORKFORCE, columns, frozenset(), "the query for workforce")
    message = str(raised.value)
    assert "the query for workforce does not match the workforce schema" in message
    assert "returns tenure_month, which is not in the workforce schema (did you mean " in message
    assert "tenure_months?)" in message
    assert "does not return unit\n" in message
    assert "returns role more than once" in message
    assert "No row was read" in message


CONNECT, QUERY = Phase.CONNECT, Phase.QUERY
CLASSIFIED = {
    "refused": (DriverError("connection refused"), CONNECT, Failure.UNREACHABLE),
    "pg-login": (DriverError("x", sqlstate="28P01"), CONNECT, Failure.LOGIN),
    "mysql-login": (DriverError("Access denied", mysql_errno=1045), CONNECT, Failure.LOGIN),
    "pg-timeout": (DriverError("x", sqlstate="57014"), QUERY, Failure.TIMEOUT),
    "mariadb-timeout": (DriverError("x", mysql_errno=1969), QUERY, Failure.TIMEOUT),
    "timeout-text-only": (
        DriverError("ERROR: canceling statement due to statement timeout"),
        QUERY,
        Failure.TIMEOUT,
    ),
    "pg-write": (DriverError("x", sqlstate="25006"), QUERY, Failure.WRITE),
    "syntax": (DriverError("syntax error", sqlstate="42601"), QUERY, Failure.QUERY),
}


@pytest.mark.parametrize(("error", "phase", "expected"), CLASSIFIED.values(), ids=CLASSIFIED.keys())
def test_driver_errors_are_sorted_into_what_the_operator_must_fix(
    error: DriverError, phase: Phase, expected: Failure
) -> None:
    assert classify(error, phase) is expected


def test_the_password_is_scrubbed_from_driver_messages() -> None:
    text = "could not connect to postgresql://u:Hunter2@db\n  detail"
    assert scrub(text, "Hunter2") == "could not connect to postgresql://u:***@db detail"
