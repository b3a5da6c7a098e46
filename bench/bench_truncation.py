"""Benchmark: what the per-person truncation costs in plain Python Polars.

Profiles the question behind issue 12 Deliver 1 on the issue 9 branch: would moving the
identifier truncation out of OpenDP's bundled Polars engine into plain Python Polars
bring DP queries within 1.3x of the non-private aggregation? It times, on the same
incidents-shaped snapshot as bench/bench_query.py, in plain Polars only:

* the aggregate alone (what the baseline of bench_query.py computes);
* the same aggregate after the truncation the plan applies
  (`int_range(len).over(child_id) < bound`, rows kept in file order);
* a bound check without truncation (`group_by(child_id).len().max()`).

Prints a table and writes bench/results/truncation.json.

    python bench/bench_truncation.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
from bench_query import SCHEMA, build_snapshot

RESULTS = Path(__file__).parent / "results" / "truncation.json"
UNIT = "child_id"


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up: file cache and Polars' thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(path: Path, repeats: int) -> dict[str, float]:
    frame = pl.scan_parquet(path)
    bound = SCHEMA.dataset("incidents").max_rows_per_unit
    truncated = frame.filter(pl.int_range(pl.len()).over(UNIT) < bound)
    cases: dict[str, Callable[[], object]] = {
        "sum": lambda: frame.select(pl.col("child_age_months").sum()).collect(),
        "truncate + sum": lambda: truncated.select(pl.col("child_age_months").sum()).collect(),
        "count by primary_cause": lambda: frame.group_by("primary_cause").len().collect(),
        "truncate + count by primary_cause": lambda: (
            truncated.group_by("primary_cause").len().collect()
        ),
        "bound check (group_by unit, max len)": lambda: (
            frame.group_by(UNIT).len().select(pl.col("len").max()).collect()
        ),
    }
    return {name: _median_ms(action, repeats) for name, action in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "incidents.parquet"
        build_snapshot(path, args.rows)
        units = pl.scan_parquet(path).select(pl.col(UNIT).n_unique()).collect().item()
        results = measure(path, args.repeats)
    print(f"{args.rows:,} rows, {units:,} distinct {UNIT} (plain Python Polars, median ms)")
    for name, ms in results.items():
        print(f"{name:40} {ms:9.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {"rows": args.rows, "distinct_units": units, "median_ms": results}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
