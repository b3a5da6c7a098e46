"""A refresh streams: the database's rows are spooled batch by batch and validated in
person buckets, like a large exported file, and nothing of the spool is left behind.

Real PostgreSQL (both readers); the batch and bucket sizes are lowered so that a few
thousand rows take the streaming paths a table of millions takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from support_databases import POSTGRES_URL, load_postgres_table, postgres_schema
from support_node import NodeWorld, make_node_world
from support_sources import jurisdiction, refresh, write_sources_toml

import node.ingest_buckets
import node.sql_source
from node.row_spool import RowSpool
from node.scratch_dirs import SCRATCH_PREFIX
from node.settings import load_settings
from node.store import DataStore, node_schema
from node.synth import generate
from privacy.schema import PARTNERSHIP_SCHEMA

CHILDREN = 3_000


@pytest.fixture(scope="module")
def reports() -> pl.DataFrame:
    return generate("reports", jurisdiction(CHILDREN), seed=21)


@pytest.fixture
def schema(reports: pl.DataFrame) -> Iterator[str]:
    with postgres_schema() as name:
        load_postgres_table(name, "reports", reports)
        yield name


@pytest.fixture
def world(tmp_path: Path) -> NodeWorld:
    return make_node_world(tmp_path / "world", datasets=("reports",), children=CHILDREN)


def _sources(folder: Path, schema: str, settings: str) -> Path:
    return write_sources_toml(
        folder,
        database="casework",
        url=POSTGRES_URL,
        settings=settings,
        queries={"reports": f"SELECT * FROM {schema}.reports"},
    )


def _snapshot_rows(world: NodeWorld) -> pl.DataFrame:
    snapshot = DataStore(world.node, PARTNERSHIP_SCHEMA).current("reports")
    assert snapshot is not None
    return pl.read_parquet(snapshot.path).sort(pl.all())


def _scratch_left(world: NodeWorld) -> list[Path]:
    return list(world.node.root.rglob(f"{SCRATCH_PREFIX}*"))


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_a_refresh_spools_in_batches_buckets_persons_and_stores_what_a_file_ingest_stores(
    reader: str,
    *,
    reports: pl.DataFrame,
    schema: str,
    world: NodeWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same rows as a file, ingested whole: the reference snapshot.
    export = tmp_path / "reports.parquet"
    reports.write_parquet(export)
    store = DataStore(world.node, node_schema(load_settings(world.node.root)))
    assert store.ingest("reports", export).snapshot is not None
    expected = _snapshot_rows(world)

    batches: list[int] = []
    add = RowSpool.add

    def counting_add(spool: RowSpool, batch: pl.DataFrame) -> None:
        batches.append(batch.height)
        add(spool, batch)

    monkeypatch.setattr(RowSpool, "add", counting_add)
    monkeypatch.setattr(node.sql_source, "BATCH_ROWS", 100)
    monkeypatch.setattr(node.ingest_buckets, "BUCKET_ROWS", 150)
    # (ADBC sizes its own Arrow batches; SQLAlchemy's follow BATCH_ROWS.)
    code, out, err = refresh(world, _sources(tmp_path, schema, f'reader = "{reader}"'))

    assert code == 0, out + err
    assert sum(batches) == reports.height
    assert reports.height > 3 * node.ingest_buckets.BUCKET_ROWS  # several person buckets
    if reader == "sqlalchemy":
        assert max(batches) <= 100, f"the rows did not arrive in batches: {batches}"
    assert _snapshot_rows(world).equals(expected)
    assert _scratch_left(world) == []


def test_a_refresh_refused_mid_stream_leaves_no_spool_and_keeps_the_snapshot(
    reports: pl.DataFrame,
    schema: str,
    world: NodeWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = DataStore(world.node, PARTNERSHIP_SCHEMA).current("reports")
    monkeypatch.setattr(node.sql_source, "BATCH_ROWS", 100)
    limit = reports.height // 2
    settings = f'reader = "sqlalchemy"\nrow_limit = {limit}'
    code, out, err = refresh(world, _sources(tmp_path, schema, settings))

    assert code != 0
    assert f"returns more than row_limit = {limit} rows" in out + err
    assert DataStore(world.node, PARTNERSHIP_SCHEMA).current("reports") == before
    assert _scratch_left(world) == []


def test_the_spool_joins_batches_typed_differently_as_one_frame_read_at_once(
    tmp_path: Path,
) -> None:
    batches = [
        pl.DataFrame({"n": [1, 2], "note": [None, None]}),
        pl.DataFrame({"n": [2.5], "note": ["late"]}),
        pl.DataFrame({"n": [None], "note": [None]}, schema={"n": pl.Null, "note": pl.Null}),
    ]
    spool = RowSpool(tmp_path)
    try:
        for batch in batches:
            spool.add(batch)
        joined = pl.read_parquet(spool.finish(["n", "note"]))
        assert (spool.folder.stat().st_mode & 0o777) == 0o700
    finally:
        spool.discard()
    assert joined.equals(pl.concat(batches, how="vertical_relaxed"))
    assert not spool.folder.exists()


def test_a_query_with_no_rows_spools_an_empty_file_with_its_columns(tmp_path: Path) -> None:
    spool = RowSpool(tmp_path)
    try:
        empty = pl.read_parquet(spool.finish(["a", "b"]))
    finally:
        spool.discard()
    assert empty.columns == ["a", "b"]
    assert empty.height == 0
