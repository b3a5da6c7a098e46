"""A private Parquet file written part by part (a snapshot, before its name is known).

Ingest validates an export in buckets (node/ingest_buckets.py) and appends each bucket's
valid rows here as one or more row groups (pyarrow's `ParquetWriter`, zstd, with
statistics), into a private (0600) temporary file in the snapshots folder. A part is
encoded and written in a background thread (node/background.py) while ingest validates
the next one. `finish` fsyncs the file; the store hashes the bytes on disk, renames the
file to `<id>.parquet` and fsyncs the folder (`kernel.files.fsync_directory`), or
`discard`s it. The min/max of each date column is kept as the parts go by, for the
manifest's local-only ranges."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kernel.files import PRIVATE_FILE_MODE
from node.background import WriteBehind
from node.permissions import make_private_dir

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq


class SnapshotFile:
    """An unnamed snapshot being written: `write` parts, then `finish` or `discard`."""

    def __init__(self, folder: Path, date_columns: Sequence[str] = ()) -> None:
        make_private_dir(folder)
        self.path = folder / f".incoming-{secrets.token_hex(6)}.parquet.tmp"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        os.fchmod(descriptor, PRIVATE_FILE_MODE)  # whatever the umask
        self._handle: BinaryIO | None = os.fdopen(descriptor, "wb")
        self._writer: pq.ParquetWriter | None = None
        self._behind = WriteBehind()
        self._date_columns = tuple(date_columns)
        self._ranges: dict[str, tuple[date | None, date | None]] = {}
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        """Append rows (the snapshot's columns and dtypes, the same for every part).

        Returns once the previous part is written; this one is encoded and written by
        pyarrow in a background thread meanwhile (`finish` waits for it). The frame is
        handed over as Arrow here: polars 1.36's `to_arrow` can deadlock when another
        thread uses the same frame (pola-rs/polars#27472)."""
        import polars as pl

        assert self._handle is not None, "write after finish or discard"
        table = frame.to_arrow(compat_level=pl.CompatLevel.newest())  # no copy of text
        self.rows += frame.height
        for name in self._date_columns:
            self._widen(name, frame[name].min(), frame[name].max())
        self._behind.submit(lambda: self._append(table))

    def _append(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        assert self._handle is not None
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._handle, table.schema, compression="zstd")
        self._writer.write_table(table)

    def date_ranges(self) -> dict[str, list[str | None]]:
        """min/max of each date column over every row written (LOCAL ONLY: private)."""
        ranges: dict[str, list[str | None]] = {}
        for name in self._date_columns:
            low, high = self._ranges.get(name, (None, None))
            ranges[name] = [None if low is None else str(low), None if high is None else str(high)]
        return ranges

    def finish(self) -> None:
        """Close the file and fsync it."""
        assert self._handle is not None, "finish after finish or discard"
        self._behind.wait()
        self._behind.close()
        if self._writer is not None:
            self._writer.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None

    def discard(self) -> None:
        """Delete the file (whatever state it is in)."""
        self._behind.close()
        if self._handle is not None:
            if self._writer is not None:
                self._writer.close()
            self._handle.close()
            self._handle = None
        self.path.unlink(missing_ok=True)

    def _widen(self, name: str, low: object, high: object) -> None:
        old_low, old_high = self._ranges.get(name, (None, None))
        if isinstance(low, date) and (old_low is None or low < old_low):
            old_low = low
        if isinstance(high, date) and (old_high is None or high > old_high):
            old_high = high
        self._ranges[name] = (old_low, old_high)
