"""Time and peak memory of `synth` and `ingest` of `reports`, at several sizes.

Each step runs in its own child process (`python -c`), so its peak RSS is its own: the
parent reads it with `os.wait4` (the child's `ru_maxrss`, as
`resource.getrusage(RUSAGE_CHILDREN)` would for one child). Steps:

- `synth`: generate the synthetic `reports` rows of a jurisdiction sized for N rows and
  write them to one Parquet file (`node.synth`);
- `ingest`: `DataStore.ingest` of that file into a fresh node folder: read, row
  validation, truncation, derived columns and `workforce_years`, reject report, snapshot
  and manifest (sha256), atomic switch of CURRENT.

With `--baseline-tree DIR` (an earlier checkout, e.g. `git archive main | tar -x -C DIR`)
every step also runs with DIR's code first on `sys.path`, alternated with this tree's,
and the ratios this/baseline are printed. The baseline ingests the file the baseline's
own synth wrote. Writes bench/results/ingest.json. Not a test.

    python bench/bench_ingest.py [--rows 1000000 10000000 50000000] [--baseline-tree DIR]
        [--baseline-max-rows 10000000] [--runs 1] [--out bench/results/ingest.json]
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results") / "ingest.json"
CHILDREN_PER_MILLION_REPORTS = 4_000_000  # as bench_sources.py: 2019-2024
FIRST_YEAR, LAST_YEAR = 2019, 2024

SYNTH = f"""
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from node.synth import Jurisdiction, default_counties, generate
children, out = int(sys.argv[2]), Path(sys.argv[3])
jurisdiction = Jurisdiction(children=children, first_year={FIRST_YEAR}, last_year={LAST_YEAR},
                            counties=default_counties(children))
try:
    from node.synth_output import write_parquet
except ImportError:  # a tree from before synth streamed
    generate("reports", jurisdiction, 3).write_parquet(out)
else:
    write_parquet("reports", jurisdiction, 3, out)
"""

INGEST = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from node.layout import NodePaths
from node.store import DataStore
from node.synth import default_counties
from privacy.schema import PARTNERSHIP_SCHEMA
children, source, root = int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
schema = PARTNERSHIP_SCHEMA.with_local_domains({"county": default_counties(children)})
result = DataStore(NodePaths(root), schema).ingest("reports", source)
assert result.snapshot is not None, result.problem
print(json.dumps({"accepted": result.accepted, "rejected": result.rejected,
                  "derived": [s.rows for s in result.derived]}))
"""


def run_step(script: str, *args: str) -> dict[str, Any]:
    """Run one step in a child process: its wall and CPU seconds (user + system: on a
    shared machine the steadier figure), peak RSS (MB) and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode != 0:
        raise SystemExit(f"step failed with exit code {process.returncode}: {args}")
    return {
        "seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "out": output,
    }


def measure(tree: Path, rows: int, scratch: Path, run: int) -> dict[str, Any]:
    children = rows * CHILDREN_PER_MILLION_REPORTS // 1_000_000
    source = scratch / f"reports-{rows}-{run}.parquet"
    synth = run_step(SYNTH, str(tree), str(children), str(source))
    import pyarrow.parquet as pq

    file_rows = pq.ParquetFile(source).metadata.num_rows
    ingest = run_step(INGEST, str(tree), str(children), str(source), str(scratch / f"node-{run}"))
    facts = json.loads(ingest.pop("out"))
    synth.pop("out")
    source.unlink()
    subprocess.run(["rm", "-rf", str(scratch / f"node-{run}")], check=True)
    return {"rows": file_rows, "synth": synth, "ingest": ingest, **facts}


def median_of(runs: list[dict[str, Any]], step: str, key: str) -> float:
    return float(statistics.median(run[step][key] for run in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--baseline-tree", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    parser.add_argument(
        "--baseline-max-rows",
        type=int,
        default=10_000_000,
        help="largest size the baseline runs at (its memory grows with the table)",
    )
    args = parser.parse_args()

    trees = {"this": HERE}
    if args.baseline_tree:
        trees["baseline"] = args.baseline_tree.resolve()
    sizes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=HERE / "bench") as scratch:
        for rows in args.rows:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for run in range(args.runs):
                for name, tree in trees.items():  # alternated: load on the machine hits both
                    if name == "baseline" and rows > args.baseline_max_rows:
                        continue
                    runs[name].append(measure(tree, rows, Path(scratch), run))
            entry: dict[str, Any] = {"target_rows": rows}
            for name, measured in runs.items():
                if not measured:
                    continue
                entry[name] = {
                    "rows": measured[0]["rows"],
                    **{
                        f"{step}_{key}": median_of(measured, step, key)
                        for step in ("synth", "ingest")
                        for key in ("seconds", "cpu_seconds", "peak_rss_mb")
                    },
                    "runs": len(measured),
                }
            if "baseline" in entry:
                entry["ratio_this_over_baseline"] = {
                    key: round(entry["this"][key] / entry["baseline"][key], 2)
                    for key in entry["this"]
                    if key.startswith(("synth_", "ingest_"))
                }
            sizes.append(entry)
            print(json.dumps(entry, indent=2), flush=True)
    result = {
        "bench": "ingest",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "sizes": sizes,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
