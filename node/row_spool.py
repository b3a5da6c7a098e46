"""The rows a database query returns, spooled batch by batch to one private Parquet file.

A refresh never holds a whole table in memory: each batch the driver hands over is
written as a part file as it arrives, and `finish` joins the parts into one Parquet file
with polars' streaming engine. The joined file then takes exactly the path of an
exported file (`DataStore.ingest_export`: person buckets, validation, snapshot).

Batches from SQLAlchemy are typed by polars one batch at a time, so a column may come as
`Int64` in one batch and `Float64` (or all-null) in another; the parts are joined with
`vertical_relaxed`, which gives each column the supertype of its batches, as the whole
frame read at once did.

The spool holds raw case records: its folder is private (0700) inside the node folder,
made like ingest's scratch folders (node/scratch_dirs.py: abandoned ones are removed by
the next run), and removed by `discard` whatever happened.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.files import PRIVATE_FILE_MODE
from node.scratch_dirs import new_scratch_dir

if TYPE_CHECKING:
    import polars as pl

SPOOLED_FILE = "rows.parquet"


class RowSpool:
    """Add batches, then `finish` (the joined file) and always `discard` (the folder)."""

    def __init__(self, parent: Path) -> None:
        self.folder = new_scratch_dir(parent)
        self._parts: list[Path] = []
        self.rows = 0

    def add(self, batch: pl.DataFrame) -> None:
        """Write one batch as a part file (0600) in the private folder."""
        path = self.folder / f"part-{len(self._parts):06d}.parquet"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            batch.write_parquet(handle, compression="lz4")
        self._parts.append(path)
        self.rows += batch.height

    def finish(self, columns: Sequence[str]) -> Path:
        """Join the parts into one Parquet file (streamed); a query with no rows gives a
        file with the query's `columns` and no rows."""
        import polars as pl

        if not self._parts:
            self.add(pl.DataFrame(schema=dict.fromkeys(columns, pl.String)))
        joined = self.folder / SPOOLED_FILE
        parts = [pl.scan_parquet(part) for part in self._parts]
        pl.concat(parts, how="vertical_relaxed").sink_parquet(joined)
        os.chmod(joined, PRIVATE_FILE_MODE)
        for part in self._parts:
            part.unlink()
        self._parts.clear()
        return joined

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
