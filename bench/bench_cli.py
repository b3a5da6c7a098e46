"""`npcs --help` start-up time against `python -c pass`, measured in the same run.

Target (DESIGN.md section 10): `npcs --help` <= 0.3 s, which it can only meet by never
importing gRPC, Polars or OpenDP at start-up (commands import their modules lazily).
Also reports the `npcs query --help` time (the heaviest command module's help).

Prints the ratio and writes bench/results/cli.json. Not a test.

    python bench/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results") / "cli.json"
TARGET_SECONDS = 0.3


def npcs_command() -> list[str]:
    """The installed `npcs` script (what users run), else the module entry point."""
    script = shutil.which("npcs") or str(Path(sys.executable).with_name("npcs"))
    if Path(script).exists():
        return [script]
    return [sys.executable, "-c", "from coordinator.cli import main; main()"]


def wall_times(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    npcs = npcs_command()
    baseline = summary(wall_times([sys.executable, "-c", "pass"], runs))
    help_times = summary(wall_times([*npcs, "--help"], runs))
    query_help = summary(wall_times([*npcs, "query", "--help"], runs))
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "runs": runs,
        "python_c_pass": baseline,
        "npcs_help": help_times,
        "npcs_query_help": query_help,
        "npcs_help_over_python_c_pass": help_times["median_s"] / baseline["median_s"],
        "target_s": TARGET_SECONDS,
        "meets_target": help_times["median_s"] <= TARGET_SECONDS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"python -c pass:    median {baseline['median_s'] * 1000:.1f} ms")
    print(f"npcs --help:       median {help_times['median_s'] * 1000:.1f} ms "
          f"(target <= {TARGET_SECONDS * 1000:.0f} ms: "
          f"{'met' if results['meets_target'] else 'NOT met'})")  # fmt: skip
    print(f"npcs query --help: median {query_help['median_s'] * 1000:.1f} ms")
    print(f"ratio npcs --help / python -c pass: {results['npcs_help_over_python_c_pass']:.2f}x")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
