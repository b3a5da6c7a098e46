"""The Polars (and Parquet) type each schema column kind is stored as in a snapshot.

Ingest writes snapshots with these types and planning declares them to OpenDP; keeping
the mapping in one place keeps the two in step. Node-side only (imports Polars).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from privacy.schema import Column, ColumnKind

SNAPSHOT_DTYPES: Mapping[ColumnKind, pl.DataType] = {
    ColumnKind.IDENTIFIER: pl.String(),
    ColumnKind.CATEGORICAL: pl.String(),
    ColumnKind.BOOLEAN: pl.Boolean(),
    ColumnKind.INTEGER: pl.Int64(),
    ColumnKind.FLOAT: pl.Float64(),
    ColumnKind.DATE: pl.Date(),
}


def snapshot_dtype(column: Column) -> pl.DataType:
    """The type `column` has in every snapshot."""
    return SNAPSHOT_DTYPES[column.kind]
