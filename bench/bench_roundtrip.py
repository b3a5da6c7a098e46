"""One `npcs query` to one real node: wall time, import time and round trips.

Builds a partnership with one node (a little synthetic `incidents` data), serves it from
a child process on 127.0.0.1 over real mTLS, writes a partnership.toml and measures,
interleaved over `--runs`:

- `npcs query count incidents --rho 0.01` as a fresh process (what the analyst waits for),
  wall and CPU time (CPU is steadier than wall on a loaded machine);
- the same command under `python -X importtime`: the imports it loads, summed;
- `python -X importtime -c "from coordinator.cli import main"` (what every command pays);
- in this process, warm: `coordinator.fanout.query_node` to the node (the round trips
  alone, without start-up).

`--baseline-tree DIR` (an unpacked earlier commit, e.g. `git archive REV | tar -x -C DIR`)
also runs that tree's `npcs query` against the same node in every run, interleaved, so
machine load hits both alike. Both trees are byte-compiled first, as an installed package
is (see `compile_tree`); which of the two runs first alternates. Prints medians (and,
with a baseline, this tree over the baseline run by run) and writes
bench/results/roundtrip.json.
Not a test. Target (issue 12): one `npcs query` to 1 node <= 0.3 s wall.

    python bench/bench_roundtrip.py [--runs 9] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proto"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fanout import NodeServers, Stopwatch, check_answered, entry_for
from support_node import PARTNERSHIP, count_spec, make_node_world

from coordinator.client import ClientCredentials
from coordinator.fanout import FanoutSettings, query_node
from coordinator.partnership import IdentityFiles, Partnership, save_partnership

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results") / "roundtrip.json"
TARGET_SECONDS = 0.3
CLI = [sys.executable, "-c", "from coordinator.cli import main; main()"]
QUERY_ARGS = ["query", "count", "incidents", "--rho", "0.01", "--purpose", "bench"]
QUERY_ARGS += ["--format", "json"]
IMPORT_MAIN = "from coordinator.cli import main"


def import_ms(stderr: str) -> float:
    """Sum of the top-level cumulative times in a `-X importtime` report, in ms."""
    total_us = 0
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        if parts[2].startswith("  "):
            continue  # nested import: already inside its parent's cumulative time
        total_us += int(parts[1])
    return total_us / 1000


PACKAGES = ("coordinator", "kernel", "privacy", "node", "proto")


def compile_tree(tree: Path) -> None:
    """Write the tree's bytecode, as installing the package does: with
    PYTHONDONTWRITEBYTECODE set (as on the development machine) every run would
    otherwise compile the project's modules from source, which no installed `npcs` does."""
    for package in PACKAGES:
        compileall.compile_dir(tree / package, quiet=1)


def run(command: list[str], env: dict[str, str], tree: Path = ROOT) -> tuple[float, float, str]:
    """Wall and CPU time (user + system) of `command` as a fresh process, and its stderr."""
    started, cpu_before = time.perf_counter(), _children_cpu()
    env = {**env, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "proto")])}
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{command[3:]} failed:\n{done.stdout}\n{done.stderr}")
    return wall, cpu, done.stderr


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def time_command(
    measured: dict[str, list[float]], env: dict[str, str], tree: Path, prefix: str = ""
) -> None:
    """`npcs query` from `tree`: wall and CPU time, then its imports (`-X importtime`)."""
    wall, cpu, _ = run([*CLI, *QUERY_ARGS], env, tree)
    measured[f"{prefix}cli_query_ms"].append(wall * 1000)
    measured[f"{prefix}cli_query_cpu_ms"].append(cpu * 1000)
    _, _, report = run([CLI[0], "-X", "importtime", *CLI[1:], *QUERY_ARGS], env, tree)
    measured[f"{prefix}cli_query_imports_ms"].append(import_ms(report))


COMPARED = ("cli_query_ms", "cli_query_cpu_ms", "cli_query_imports_ms")


def paired_ratios(measured: dict[str, list[float]]) -> dict[str, float]:
    """This tree over the baseline tree, run by run (the two ran back to back, so load
    hits both alike), then the median: below 1 means this tree is faster."""
    ratios = {}
    for key in COMPARED:
        pairs = zip(measured[key], measured[f"baseline_{key}"], strict=True)
        ratios[key] = round(statistics.median(mine / theirs for mine, theirs in pairs), 3)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--baseline-tree", type=Path)
    args = parser.parse_args()
    runs, baseline = args.runs, args.baseline_tree
    with tempfile.TemporaryDirectory(prefix="bench-roundtrip-") as scratch:
        root = Path(scratch)
        world = make_node_world(root, node_name="n00", children=2_000)
        identity = IdentityFiles(
            ca_certificate=world.alice.ca_cert,
            certificate=world.alice.tls_cert,
            tls_key=world.alice.tls_key,
            signing_key=world.alice.signing_key,
        )
        with NodeServers([world.node], 1) as addresses:
            entry = entry_for("n00", world.node, addresses[0])
            config = root / "partnership.toml"
            save_partnership(Partnership(PARTNERSHIP, identity, (entry,)), config)
            env = {**os.environ, "NPCS_CONFIG": str(config), "NPCS_DATA_DIR": str(root / "data")}
            credentials = ClientCredentials.load(identity)
            settings = FanoutSettings()
            compile_tree(ROOT)
            if baseline is not None:
                compile_tree(baseline)
            run([*CLI, *QUERY_ARGS], env)  # warm: file cache, the node's first plan
            check_answered([query_node(entry, credentials, count_spec(), settings)])
            measured: dict[str, list[float]] = defaultdict(list)
            if baseline is not None:
                run([*CLI, *QUERY_ARGS], env, baseline)  # warm its file cache too
            trees = [(ROOT, "")] + ([(baseline, "baseline_")] if baseline is not None else [])
            for index in range(runs):
                for tree, prefix in trees if index % 2 == 0 else trees[::-1]:  # either first
                    time_command(measured, env, tree, prefix)
                _, _, report = run([CLI[0], "-X", "importtime", "-c", IMPORT_MAIN], env)
                measured["cli_main_imports_ms"].append(import_ms(report))
                with Stopwatch() as trip:
                    result = query_node(entry, credentials, count_spec(), settings)
                check_answered([result])
                measured["query_node_ms"].append(trip.wall_ms)
    results: dict[str, Any] = {
        "benchmark": "one `npcs query count` to 1 node over loopback mTLS",
        "runs": runs,
        **{key: summary(values) for key, values in measured.items()},
        "baseline_tree": str(baseline) if baseline else None,
        "ratio_to_baseline": paired_ratios(measured) if baseline is not None else None,
        "target_s": TARGET_SECONDS,
        "meets_target": statistics.median(measured["cli_query_ms"]) <= TARGET_SECONDS * 1000,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for key in measured:
        print(f"{key:29s} median {results[key]['median']:7.1f} ms  "
              f"(min {results[key]['min']:.1f}, max {results[key]['max']:.1f})")  # fmt: skip
    for key, ratio in (results["ratio_to_baseline"] or {}).items():
        print(f"{key:29s} this tree / baseline, median of paired runs: {ratio:.3f}")
    verdict = "met" if results["meets_target"] else "NOT met"
    print(f"target npcs query <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
