"""What the database-source tests do with a node and a real database server: load
synthetic tables into it, write the node's sources.toml naming them, run
`npcs-node refresh`, and read which snapshot of each dataset the node now holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from support_node import COUNTIES, FIRST_YEAR, LAST_YEAR, NodeWorld

from node.cli import cli
from node.store import DataStore
from node.synth import Jurisdiction, generate
from privacy.schema import PARTNERSHIP_SCHEMA


def _as_generated(_dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    return frame


def jurisdiction(children: int) -> Jurisdiction:
    return Jurisdiction(
        children=children, first_year=FIRST_YEAR, last_year=LAST_YEAR, counties=COUNTIES
    )


def load_synthetic_tables(
    load_table: Callable[[str, pl.DataFrame], None],
    datasets: Iterable[str],
    *,
    children: int,
    seed: int,
    adapt: Callable[[str, pl.DataFrame], pl.DataFrame] = _as_generated,
) -> dict[str, int]:
    """Generate each dataset (as `adapt` changes it), load it as the table of the same
    name with `load_table`; the rows loaded, by dataset."""
    rows = {}
    for dataset in datasets:
        frame = adapt(dataset, generate(dataset, jurisdiction(children), seed=seed))
        load_table(dataset, frame)
        rows[dataset] = frame.height
    return rows


def write_sources_toml(
    folder: Path, *, database: str, url: str, settings: str, queries: Mapping[str, str]
) -> Path:
    """`folder/sources.toml`: one database (with extra `settings` lines) and a dataset
    read from it by each query."""
    lines = [f"[databases.{database}]", f'url = "{url}"', settings, ""]
    for dataset, query in queries.items():
        lines += [f"[datasets.{dataset}]", f'database = "{database}"', f"query = '''{query}'''", ""]
    path = folder / "sources.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def refresh(
    world: NodeWorld, sources: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`npcs-node refresh` of the world's node: exit code, stdout, stderr."""
    result = CliRunner().invoke(
        cli,
        ["refresh", str(world.node.root), "--sources", str(sources), *args],
        catch_exceptions=False,
        env=env,
    )
    return result.exit_code, result.stdout, result.stderr


def current_snapshot_ids(world: NodeWorld, datasets: Iterable[str]) -> dict[str, str | None]:
    """The id of each dataset's current snapshot in the world's node (None: none yet)."""
    store = DataStore(world.node, PARTNERSHIP_SCHEMA)
    return {
        dataset: snapshot.snapshot_id if (snapshot := store.current(dataset)) else None
        for dataset in datasets
    }
