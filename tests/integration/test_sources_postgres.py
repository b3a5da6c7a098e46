"""`npcs-node refresh` against the real PostgreSQL server, with a running node serving.

The module builds a node with synthetic snapshots of all four datasets, starts it on
127.0.0.1, and loads other synthetic rows (another seed) into a fresh PostgreSQL schema.
Every failure case checks two things: the command says clearly what went wrong, and the
node still answers queries from the snapshot it had (read back from the ledger entry of
a real DP query).
"""

from __future__ import annotations

import functools
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from support_databases import POSTGRES_URL, load_postgres_table, postgres_schema, url_for
from support_node import NodeWorld, make_node_world, node_stub, query_request
from support_sources import (
    current_snapshot_ids,
    jurisdiction,
    load_synthetic_tables,
    write_sources_toml,
)
from support_sources import refresh as refresh_node

from node.derived import ingested_datasets
from node.server import RunningNode, running_node
from node.store import DataStore
from node.synth import generate
from npcs.serde_ledger import query_response_from_proto
from privacy.ledger.entry import entry_from_canonical_bytes
from privacy.query import PrivacyLoss, QuerySpec, Statistic
from privacy.schema import PARTNERSHIP_SCHEMA

DATASETS = ingested_datasets(PARTNERSHIP_SCHEMA.dataset_names)
CHILDREN = 30_000
BAD_ROLE_ROWS = 5


@dataclass(frozen=True)
class Setup:
    world: NodeWorld
    server: RunningNode
    schema: str
    rows: dict[str, int]


def _aliased(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The agency's own column name for incidents, aliased back in the query."""
    if dataset == "incidents":
        return frame.rename({"incident_id": "case_number"})
    return frame


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with postgres_schema() as schema:
        rows = load_synthetic_tables(
            functools.partial(load_postgres_table, schema),
            DATASETS,
            children=CHILDREN,
            seed=11,
            adapt=_aliased,
        )
        workforce = generate("workforce", jurisdiction(CHILDREN), seed=12)
        broken = workforce.with_columns(
            pl.when(pl.int_range(pl.len()) < BAD_ROLE_ROWS)
            .then(pl.lit("boss"))
            .otherwise(pl.col("role"))
            .alias("role")
        )
        load_postgres_table(schema, "workforce_with_bad_roles", broken)
        rows["workforce_with_bad_roles"] = broken.height
        world = make_node_world(
            tmp_path_factory.mktemp("sources-pg"), datasets=DATASETS, children=CHILDREN
        )
        with running_node(world.node.root) as server:
            yield Setup(world, server, schema, rows)


def select_all(schema: str, dataset: str) -> str:
    if dataset == "incidents":
        columns = ", ".join(
            "case_number AS incident_id" if name == "incident_id" else name
            for name in PARTNERSHIP_SCHEMA.dataset("incidents").column_names
        )
        return f"SELECT {columns} FROM {schema}.incidents"
    return f"SELECT * FROM {schema}.{dataset}"


def sources_toml(
    folder: Path,
    queries: dict[str, str],
    *,
    url: str = POSTGRES_URL,
    database_settings: str = "",
) -> Path:
    return write_sources_toml(
        folder, database="casework", url=url, settings=database_settings, queries=queries
    )


def refresh(
    setup: Setup, sources: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    return refresh_node(setup.world, sources, *args, env=env)


def current_ids(setup: Setup) -> dict[str, str | None]:
    return current_snapshot_ids(setup.world, DATASETS)


def served_snapshot(setup: Setup, dataset: str) -> str:
    """The snapshot the running node answers a real DP count query from."""
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset=dataset,
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal("0.001")),
        purpose="which snapshot is served",
    )
    world = setup.world
    with node_stub(world, setup.server.port, world.alice) as stub:
        response = stub.Query(query_request(spec, world.alice), timeout=30)
    answer = query_response_from_proto(response)
    return entry_from_canonical_bytes(answer.leaf_data).snapshot_id


def assert_still_serving(setup: Setup, before: dict[str, str | None], dataset: str) -> None:
    assert current_ids(setup) == before
    assert served_snapshot(setup, dataset) == before[dataset]


def test_refresh_reads_all_four_datasets_from_postgresql_and_the_node_serves_them(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    sources = sources_toml(tmp_path, {d: select_all(setup.schema, d) for d in DATASETS})
    code, out, err = refresh(setup, sources, "--format", "json")
    assert code == 0, err
    outcomes = {outcome["dataset"]: outcome for outcome in json.loads(out)}
    assert list(outcomes) == list(DATASETS)
    after = current_ids(setup)
    for dataset, outcome in outcomes.items():
        assert outcome["refreshed"], outcome["problem"]
        assert outcome["reader"] == "adbc"
        assert outcome["rows_read"] == outcome["accepted"] == setup.rows[dataset]
        assert outcome["rejected"] == 0
        assert outcome["snapshot_id"] == after[dataset] != before[dataset]
    store = DataStore(setup.world.node, PARTNERSHIP_SCHEMA)
    reports = store.current("reports")
    assert reports is not None
    assert reports.source == "database casework"
    assert reports.rows == setup.rows["reports"]
    assert served_snapshot(setup, "reports") == after["reports"]


def test_the_sqlalchemy_reader_stores_the_same_snapshot_content_as_adbc(
    setup: Setup, tmp_path: Path
) -> None:
    store = DataStore(setup.world.node, PARTNERSHIP_SCHEMA)
    digests = []
    for reader in ("adbc", "sqlalchemy"):
        sources = sources_toml(
            tmp_path,
            {"safety_culture": select_all(setup.schema, "safety_culture")},
            database_settings=f'reader = "{reader}"',
        )
        code, out, err = refresh(setup, sources, "safety_culture", "--format", "json")
        assert code == 0, err
        assert json.loads(out)[0]["reader"] == reader
        snapshot = store.current("safety_culture")
        assert snapshot is not None
        digests.append(snapshot.sha256)
    assert digests[0] == digests[1]


def test_a_bad_mapping_is_refused_before_any_row_is_read_and_the_node_keeps_serving(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    columns = [
        "child_id AS chld_id"
        if name == "child_id"
        # Reading any row would divide by zero: the error must be the mapping, not this.
        else "1 / (child_age_months - child_age_months) AS child_age_months"
        if name == "child_age_months"
        else name
        for name in PARTNERSHIP_SCHEMA.dataset("reports").column_names
        if name != "recurrence_12m"
    ]
    query = f"SELECT {', '.join(columns)} FROM {setup.schema}.reports"
    code, _, err = refresh(setup, sources_toml(tmp_path, {"reports": query}))
    assert code == 1
    assert "the query for reports on database casework does not match the reports schema" in err
    assert "returns chld_id, which is not in the reports schema (did you mean child_id?)" in err
    assert "does not return child_id (did you mean chld_id?)" in err
    assert "division by zero" not in err
    assert "No row was read" in err
    assert_still_serving(setup, before, "reports")


def test_an_unreachable_database_fails_clearly_and_the_node_keeps_serving(
    setup: Setup, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = url_for(POSTGRES_URL).set(port=port).render_as_string(hide_password=False)
    before = current_ids(setup)
    sources = sources_toml(tmp_path, {"workforce": select_all(setup.schema, "workforce")}, url=url)
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert f"could not connect to database casework (postgresql://postgres@127.0.0.1:{port}" in err
    assert "Connection refused" in err
    assert "The current snapshot stays in use." in err
    assert_still_serving(setup, before, "workforce")


def test_a_slow_query_is_cancelled_by_the_statement_timeout_and_the_node_keeps_serving(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    query = f"SELECT w.* FROM {setup.schema}.workforce w CROSS JOIN (SELECT pg_sleep(30)) s"
    sources = sources_toml(
        tmp_path, {"workforce": query}, database_settings="statement_timeout_seconds = 0.5"
    )
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert "ran longer than statement_timeout_seconds = 0.5 and the database cancelled it" in err
    assert_still_serving(setup, before, "workforce")


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_a_query_that_writes_is_refused_by_the_read_only_transaction(
    setup: Setup, tmp_path: Path, reader: str
) -> None:
    before = current_ids(setup)
    query = f"SELECT * FROM {setup.schema}.workforce WHERE nextval('{setup.schema}.counter') > 0"
    from support_databases import postgres_connection

    with postgres_connection() as connection:
        connection.execute(f"CREATE SEQUENCE IF NOT EXISTS {setup.schema}.counter")
    sources = sources_toml(tmp_path, {"workforce": query}, database_settings=f'reader = "{reader}"')
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert "tried to write, which the read-only transaction refused" in err
    assert "cannot execute nextval() in a read-only transaction" in err
    assert current_ids(setup) == before


def test_too_many_rejected_rows_keep_the_old_snapshot_until_the_threshold_allows_them(
    setup: Setup, tmp_path: Path
) -> None:
    before = current_ids(setup)
    total = setup.rows["workforce_with_bad_roles"]
    query = f"SELECT * FROM {setup.schema}.workforce_with_bad_roles"
    sources = sources_toml(tmp_path, {"workforce": query})

    code, out, err = refresh(setup, sources, "--format", "json")
    assert code == 1
    [outcome] = json.loads(out)
    assert (outcome["refreshed"], outcome["rejected"]) == (False, BAD_ROLE_ROWS)
    assert f"{BAD_ROLE_ROWS} of {total} rows" in outcome["problem"]
    assert "ingest.max_rejected_fraction" in outcome["problem"]
    assert Path(outcome["reject_report"]).is_file()
    assert_still_serving(setup, before, "workforce")

    lenient = {"NPCS_NODE_INGEST__MAX_REJECTED_FRACTION": "0.01"}
    code, out, err = refresh(setup, sources, "--check", "--format", "json", env=lenient)
    assert code == 0, err
    assert json.loads(out)[0]["checked_only"] is True
    assert current_ids(setup) == before

    code, out, err = refresh(setup, sources, env=lenient)
    assert code == 0, err
    assert f"{total - BAD_ROLE_ROWS} rows from database casework stored" in out
    assert f"{BAD_ROLE_ROWS} rows rejected" in err
    assert current_ids(setup)["workforce"] != before["workforce"]


def test_a_query_returning_more_than_the_row_limit_is_refused(setup: Setup, tmp_path: Path) -> None:
    before = current_ids(setup)
    sources = sources_toml(
        tmp_path,
        {"reports": select_all(setup.schema, "reports")},
        database_settings="row_limit = 100",
    )
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert "returns more than row_limit = 100 rows" in err
    assert current_ids(setup) == before


def test_an_unset_password_variable_is_named_before_connecting(
    setup: Setup, tmp_path: Path
) -> None:
    sources = sources_toml(
        tmp_path,
        {"workforce": select_all(setup.schema, "workforce")},
        database_settings='password_env = "NPCS_TEST_UNSET_PASSWORD"',
    )
    code, _, err = refresh(setup, sources)
    assert code == 1
    assert "password_env names NPCS_TEST_UNSET_PASSWORD, which is not set" in err
