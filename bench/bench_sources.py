"""Refreshing 1M `reports` rows from PostgreSQL against ingesting the same rows from Parquet.

Loads synthetic `reports` rows into a scratch schema of the PostgreSQL server (default:
the test server at 127.0.0.1:5432, database `test`; NPCS_TEST_POSTGRES_URL overrides it)
and writes the same rows to a Parquet file. Then times, interleaved so other load on the
machine hits each alike:

- `parquet`:  `npcs-node ingest`'s path: read the Parquet file, validate, store a snapshot;
- `postgres_adbc`: `npcs-node refresh`'s path with the default reader (ADBC, Arrow batches);
- `postgres_sqlalchemy`: the same with `reader = "sqlalchemy"` (psycopg rows via
  SQLAlchemy), the path every non-PostgreSQL database takes.

Each row reports the whole command's work (read + validation + snapshot) and the read
alone. Then each reader's refresh runs once more in a child process, for its peak
resident memory (the child's VmHWM); with `--baseline-tree DIR` (an earlier
tree, e.g. `git archive REV | tar -x -C DIR`) the same refresh from that tree runs
alternated with this one. Prints ratios against the Parquet baseline and writes
bench/results/sources.json. The scratch schema is dropped afterwards. Not a test.

    python bench/bench_sources.py [--rows 1000000] [--runs 3] [--sqlalchemy-runs 1]
        [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support_databases import POSTGRES_URL, load_postgres_table, postgres_schema

from node.layout import NodePaths
from node.refresh import RefreshOutcome, refresh_datasets
from node.settings import load_settings
from node.sources_file import SourcesFile
from node.store import DataStore, node_schema
from node.synth import Jurisdiction, default_counties, generate

RESULTS = Path(__file__).with_name("results") / "sources.json"
TREE = Path(__file__).resolve().parents[1]
_CHILD_REFRESH = """
import sys
sys.path.insert(0, sys.argv[1])
from node.layout import NodePaths
from node.refresh import refresh_datasets
from node.settings import load_settings
from node.sources_file import SourcesFile
from pathlib import Path
paths = NodePaths(Path(sys.argv[2]))
sources = SourcesFile.model_validate_json(sys.argv[3])
[outcome] = refresh_datasets(paths, load_settings(paths.root), sources, paths.root, ["reports"])
assert outcome.result is not None and outcome.result.snapshot is not None, outcome.error
status = Path("/proc/self/status").read_text()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""
CHILDREN_PER_MILLION_REPORTS = 4_000_000


def reports_rows(rows: int) -> tuple[Any, tuple[str, ...]]:
    children = max(100_000, rows * CHILDREN_PER_MILLION_REPORTS // 1_000_000)
    counties = default_counties(children)
    jurisdiction = Jurisdiction(
        children=children, first_year=2019, last_year=2024, counties=counties
    )
    frame = generate("reports", jurisdiction, seed=3)
    if frame.height < rows:
        raise SystemExit(f"the generator made only {frame.height} rows; raise the children")
    return frame.head(rows), counties


def node_folder(root: Path, counties: tuple[str, ...]) -> NodePaths:
    paths = NodePaths(root)
    root.mkdir(parents=True)
    county_list = ", ".join(f'"{county}"' for county in counties)
    paths.settings_file.write_text(
        f'name = "bench"\npartnership = "bench"\ncounties = [{county_list}]\n', encoding="utf-8"
    )
    return paths


def sources_for(schema: str, reader: str) -> SourcesFile:
    query = f"SELECT * FROM {schema}.reports"
    return SourcesFile.model_validate(
        {
            "databases": {"casework": {"url": POSTGRES_URL, "reader": reader}},
            "datasets": {"reports": {"database": "casework", "query": query}},
        }
    )


Measure = Callable[[], tuple[float, float]]
"""One run: (whole command's seconds, the read's seconds)."""


def child_peak_mb(tree: Path, paths: NodePaths, sources: SourcesFile) -> float:
    """Peak resident memory (MB) of one refresh from `tree`, in a fresh process."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD_REFRESH,
            str(tree),
            str(paths.root),
            sources.model_dump_json(),
        ],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the refresh from {tree} failed: {done.stderr[-2000:]}")
    # The child's own high-water mark (VmHWM, kB): a fork's ru_maxrss would include
    # this process's memory, which Linux carries across exec.
    return round(int(done.stdout.split()[-1]) / 1024, 1)


def refresh_peaks(
    baseline: Path | None, paths: NodePaths, schema: str
) -> dict[str, dict[str, float]]:
    """Each reader's refresh peak RSS (MB), this tree's and the baseline's, alternated."""
    trees = {"this": TREE} | ({"baseline": baseline} if baseline else {})
    peak_mb: dict[str, dict[str, float]] = {}
    for reader in ("adbc", "sqlalchemy"):
        for name, tree in trees.items():
            peak = child_peak_mb(tree, paths, sources_for(schema, reader))
            peak_mb.setdefault(name, {})[reader] = peak
    return peak_mb


def summary(runs: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "total_s": round(statistics.median(total for total, _ in runs), 3),
        "read_s": round(statistics.median(read for _, read in runs), 3),
        "runs": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sqlalchemy-runs", type=int, default=1)
    parser.add_argument("--baseline-tree", type=Path, help="an earlier tree, for peak memory")
    args = parser.parse_args()

    frame, counties = reports_rows(args.rows)
    with (
        tempfile.TemporaryDirectory(prefix="bench-sources-") as scratch,
        postgres_schema() as schema,
    ):
        started = time.perf_counter()
        load_postgres_table(schema, "reports", frame)
        parquet = Path(scratch) / "reports.parquet"
        frame.write_parquet(parquet)
        setup_s = time.perf_counter() - started
        paths = node_folder(Path(scratch) / "node", counties)
        settings = load_settings(paths.root)
        store = DataStore(paths, node_schema(settings))

        def ingest_parquet() -> tuple[float, float]:
            import polars as pl

            read_started = time.perf_counter()
            pl.read_parquet(parquet)  # the read alone, timed apart from the ingest
            read_s = time.perf_counter() - read_started
            started = time.perf_counter()
            result = store.ingest("reports", parquet)
            total_s = time.perf_counter() - started
            if result.snapshot is None or result.rejected:
                raise SystemExit(f"the Parquet ingest failed: {result.problem}")
            return total_s, read_s

        def refresh_with(reader: str) -> Measure:
            def once() -> tuple[float, float]:
                started = time.perf_counter()
                [outcome] = refresh_datasets(
                    paths, settings, sources_for(schema, reader), paths.root, ["reports"]
                )
                total_s = time.perf_counter() - started
                check(outcome, reader)
                return total_s, outcome.read_seconds

            return once

        ingest_parquet()  # warm up both: imports, the file cache, the server's buffers
        refresh_with("adbc")()
        parquet_runs, adbc_runs = [], []
        for _ in range(args.runs):  # interleaved
            parquet_runs.append(ingest_parquet())
            adbc_runs.append(refresh_with("adbc")())
        results = {"parquet": summary(parquet_runs), "postgres_adbc": summary(adbc_runs)}
        if args.sqlalchemy_runs:
            sqlalchemy = refresh_with("sqlalchemy")
            results["postgres_sqlalchemy"] = summary(
                [sqlalchemy() for _ in range(args.sqlalchemy_runs)]
            )
        peak_mb = refresh_peaks(args.baseline_tree, paths, schema)

    baseline = results["parquet"]["total_s"]
    report: dict[str, Any] = {
        "benchmark": "refresh of reports rows from PostgreSQL vs ingest of the same Parquet rows",
        "rows": frame.height,
        "postgres": "127.0.0.1 (same machine)",
        "results": results,
        "ratio_total_vs_parquet": {
            name: round(values["total_s"] / baseline, 2) for name, values in results.items()
        },
        "refresh_peak_rss_mb": peak_mb,
        "setup_s": round(setup_s, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    print(f"wrote {RESULTS}")


def print_report(report: dict[str, Any]) -> None:
    print(f"{report['rows']:,} reports rows (median of runs; read = fetching the rows alone)")
    for name, values in report["results"].items():
        print(
            f"{name:20s} total {values['total_s']:7.2f} s   read {values['read_s']:7.2f} s   "
            f"{report['ratio_total_vs_parquet'][name]:5.2f}x parquet"
        )
    for name, peaks in report["refresh_peak_rss_mb"].items():
        shown = ", ".join(f"{reader} {mb:,.0f} MB" for reader, mb in peaks.items())
        print(f"refresh peak RSS ({name} tree, own process): {shown}")


def check(outcome: RefreshOutcome, reader: str) -> None:
    if not outcome.succeeded or outcome.reader != reader:
        raise SystemExit(f"refresh with {reader} failed: {outcome.problem}")


if __name__ == "__main__":
    main()
