"""Shared test data: a schema with declared counties, and typed Parquet snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from privacy.schema import PARTNERSHIP_SCHEMA, ColumnKind, Dataset
from privacy.snapshot_types import snapshot_dtype

TEST_COUNTIES = ("adams", "baker", "clark")
TEST_SCHEMA = PARTNERSHIP_SCHEMA.with_local_domains({"county": TEST_COUNTIES})
"""The partnership schema as a node with three counties publishes it."""


def write_snapshot(path: Path, dataset: Dataset, rows: Sequence[Mapping[str, object]]) -> Path:
    """A Parquet file with exactly the dataset's columns and snapshot types.

    Values a row does not give are null, except identifiers, which get distinct ids.
    """
    data = {
        column.name: pl.Series(
            column.name,
            [
                row.get(column.name, f"id{i}" if column.kind is ColumnKind.IDENTIFIER else None)
                for i, row in enumerate(rows)
            ],
            dtype=snapshot_dtype(column),
        )
        for column in dataset.columns
    }
    pl.DataFrame(data).write_parquet(path)
    return path
