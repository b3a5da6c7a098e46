"""Synthetic datasets written to one file chunk by chunk, never held whole in memory.

`node.synth.generate_chunks` yields a dataset in parts of bounded size; Parquet gets one
row group per part (pyarrow's `ParquetWriter`), CSV one header and the parts' rows
appended. Peak memory is about one part, whatever the jurisdiction's size.
"""

from __future__ import annotations

from pathlib import Path

from node.synth import Jurisdiction, generate_chunks


def write_parquet(dataset: str, jurisdiction: Jurisdiction, seed: int, path: Path) -> int:
    """Generate `dataset` into one Parquet file at `path`; the number of rows written."""
    import pyarrow.parquet as pq

    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in generate_chunks(dataset, jurisdiction, seed):
            table = chunk.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            rows += chunk.height
    finally:
        if writer is not None:
            writer.close()
    return rows


def write_csv(dataset: str, jurisdiction: Jurisdiction, seed: int, path: Path) -> int:
    """Generate `dataset` into one CSV file at `path` (one header); the rows written."""
    rows = 0
    with path.open("wb") as out:
        for chunk in generate_chunks(dataset, jurisdiction, seed):
            chunk.write_csv(out, include_header=rows == 0)
            rows += chunk.height
    return rows
