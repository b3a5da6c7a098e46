"""`npcs-node refresh` against the real MariaDB server, as an account that may only SELECT.

The module creates a database and a reading user with a random password, loads
synthetic `workforce` and `safety_culture` tables, and gives the password to the node
through a 0600 file, as jurisdiction IT would.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support_databases import (
    MARIADB_URL,
    load_mariadb_table,
    mariadb_database,
    mariadb_reader,
    url_for,
)
from support_node import NodeWorld, make_node_world
from support_sources import current_snapshot_ids, load_synthetic_tables, write_sources_toml
from support_sources import refresh as refresh_node

DATASETS = ("workforce", "safety_culture")


@dataclass(frozen=True)
class Setup:
    world: NodeWorld
    url: str
    password: str
    rows: dict[str, int]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with mariadb_database() as database, mariadb_reader(database) as (user, password):
        rows = load_synthetic_tables(
            functools.partial(load_mariadb_table, database), DATASETS, children=20_000, seed=21
        )
        world = make_node_world(
            tmp_path_factory.mktemp("sources-mariadb"), datasets=DATASETS, children=20_000
        )
        url = url_for(MARIADB_URL, database=database, username=user)
        yield Setup(world, url.render_as_string(hide_password=False), password, rows)


def write_sources(setup: Setup, folder: Path, queries: dict[str, str], settings: str) -> Path:
    return write_sources_toml(
        folder, database="hr", url=setup.url, settings=settings, queries=queries
    )


def password_file(folder: Path, password: str) -> str:
    secret = folder / "hr.password"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    return 'password_file = "hr.password"'


def refresh(setup: Setup, sources: Path, *args: str) -> tuple[int, str, str]:
    return refresh_node(setup.world, sources, *args)


def current_ids(setup: Setup) -> dict[str, str | None]:
    return current_snapshot_ids(setup.world, DATASETS)


def test_refresh_reads_workforce_and_safety_culture_from_mariadb_with_a_password_file(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    queries = {dataset: f"SELECT * FROM {dataset}" for dataset in DATASETS}
    sources = write_sources(setup, tmp_path, queries, password_file(tmp_path, setup.password))
    code, out, err = refresh(setup, sources, "--format", "json")
    assert code == 0, err
    after = current_ids(setup)
    for outcome in json.loads(out):
        dataset = outcome["dataset"]
        assert outcome["refreshed"], outcome["problem"]
        assert outcome["reader"] == "sqlalchemy"
        assert outcome["accepted"] == setup.rows[dataset]
        assert outcome["snapshot_id"] == after[dataset] != before[dataset]
    assert setup.password not in out + err


def test_a_wrong_password_is_refused_clearly_and_keeps_the_snapshot(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    wrong = "not-" + setup.password
    sources = write_sources(
        setup, tmp_path, {"workforce": "SELECT * FROM workforce"}, password_file(tmp_path, wrong)
    )
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert "refused the login: Access denied for user" in err
    assert "(from the file hr.password)" in err
    assert "The current snapshot stays in use." in err
    assert wrong not in err
    assert current_ids(setup) == before


def test_a_slow_query_is_cancelled_by_max_statement_time_and_keeps_the_snapshot(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    settings = password_file(tmp_path, setup.password) + "\nstatement_timeout_seconds = 0.5"
    query = "SELECT * FROM safety_culture WHERE SLEEP(30) = 0"
    sources = write_sources(setup, tmp_path, {"safety_culture": query}, settings)
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert "ran longer than statement_timeout_seconds = 0.5 and the database cancelled it" in err
    assert current_ids(setup) == before


def test_the_mariadb_session_is_read_only(setup: Setup, tmp_path: Path) -> None:
    """Even an account that may write cannot through a source: root, in the guarded session."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from node.sources_file import DatabaseSource
    from node.sql_source import guard_statements

    root_url = url_for(MARIADB_URL, database=url_for(setup.url).database)
    engine = create_engine(root_url.set(drivername="mysql+pymysql"))
    try:
        with engine.connect() as connection:
            for statement in guard_statements(
                "mysql", True, DatabaseSource(url=MARIADB_URL, statement_timeout_seconds=5)
            ):
                connection.exec_driver_sql(statement)
            with pytest.raises(OperationalError, match="READ ONLY transaction"):
                connection.exec_driver_sql("DELETE FROM workforce")
        with engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT COUNT(*) FROM workforce").scalar_one()
    finally:
        engine.dispose()
    assert count == setup.rows["workforce"]
