"""kill -9 during ingest, after the new snapshot is written but before CURRENT switches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from node.layout import NodePaths
from node.store import DataStore
from node.synth import Jurisdiction, generate
from privacy.schema import PARTNERSHIP_SCHEMA

COUNTIES = ("c001", "c002")
SCHEMA = PARTNERSHIP_SCHEMA.with_local_domains({"county": COUNTIES})

# The child process pauses inside the real ingest at the commit point and waits to be killed.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import node.store as store
    from node.layout import NodePaths
    from privacy.schema import PARTNERSHIP_SCHEMA

    root, source, marker = map(Path, sys.argv[1:4])

    def pause_before_switch(*_args):
        marker.write_text("ready")
        time.sleep(600)

    store._switch_current = pause_before_switch
    schema = PARTNERSHIP_SCHEMA.with_local_domains({"county": ("c001", "c002")})
    store.DataStore(NodePaths(root), schema).ingest("workforce", source)
    """
)


def _workforce(seed: int, path: Path) -> Path:
    place = Jurisdiction(children=30_000, first_year=2022, last_year=2023, counties=COUNTIES)
    generate("workforce", place, seed=seed).write_parquet(path)
    return path


def _wait_for(marker: Path, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"ingest child exited early: {process.stderr!r}")
        if time.monotonic() > deadline:
            raise AssertionError("ingest child never reached the commit point")
        time.sleep(0.01)


@pytest.mark.crash
def test_kill_9_before_current_switches_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    paths = NodePaths(tmp_path / "node")
    store = DataStore(paths, SCHEMA)
    first = store.ingest("workforce", _workforce(1, tmp_path / "first.parquet"))
    assert first.snapshot is not None
    marker = tmp_path / "at-commit-point"
    second = _workforce(2, tmp_path / "second.parquet")
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(paths.root), str(second), str(marker)],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(marker, process)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    current = DataStore(paths, SCHEMA).current("workforce")
    assert current == first.snapshot
    # Ingest stores identifiers canonically (lower case): compare with that.
    source = pl.read_parquet(tmp_path / "first.parquet")
    canonical = source.with_columns(pl.col("worker_id").str.to_lowercase())
    assert pl.read_parquet(current.path).equals(canonical)
    # The orphaned new snapshot is complete on disk but not current; a retry succeeds.
    assert len(store.snapshot_ids("workforce")) == 2
    retry = store.ingest("workforce", second)
    assert store.current("workforce") == retry.snapshot
