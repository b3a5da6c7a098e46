"""`npcs-node ledger verify` against a baseline tree, alternated in one run (issue 12).

For each size, fills a node folder's ledger through the ledger's own append path, then
runs the real command, `npcs-node ledger verify NODE_DIR`, as a child process, alternating
four ways `--repeats` times: the baseline tree (`--baseline-tree`, e.g. an export of
main) and this tree, each on its process pool (one worker per core, as the command starts
it from 32,768 entries; below that both ways run in one process) and in one process
(`--jobs 1`). Each run's wall time is what an operator waits for (interpreter start,
imports, pool start and the check); its CPU time is the child's and its pool workers'
(getrusage of reaped children), which the other work on a shared machine disturbs far
less. Prints medians and the ratios baseline / this tree, and writes
bench/results/ledger-verify.json. Not a test.

    git archive main | tar -x -C /tmp/main-src
    python bench/bench_ledger_verify.py --baseline-tree /tmp/main-src [--sizes 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from kernel.keyfiles import generate_ed25519_key
from privacy.ledger.writer import Ledger

sys.path.append(str(Path(__file__).resolve().parent))
from bench_ledger import ORIGIN, POLICY, populate

HERE = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results") / "ledger-verify.json"
CLI = "from node.cli import main; main()"
WAYS = ("baseline_pool", "after_pool", "baseline_one_process", "after_one_process")


def node_folder(root: Path, size: int) -> Path:
    """A node folder holding only what `ledger verify` reads: the ledger and its key."""
    key = generate_ed25519_key()
    (root / "keys").mkdir(parents=True)
    (root / "ledger").mkdir()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (root / "keys" / "ledger.pub").write_bytes(public_pem)
    with Ledger.open(
        root / "ledger" / "ledger.sqlite", origin=ORIGIN, signing_key=key, policy=POLICY
    ) as ledger:
        populate(ledger, size)
    return root


def run_verify(source: Path, node_dir: Path, one_process: bool) -> tuple[float, float]:
    """(wall s, CPU s of the command and its workers) of one `ledger verify`."""
    command = [sys.executable, "-c", CLI, "ledger", "verify", str(node_dir)]
    if one_process:
        command += ["--jobs", "1"]
    environment = {**os.environ, "PYTHONPATH": str(source)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run(
        command, cwd=source, env=environment, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0 or "ledger OK" not in finished.stdout:
        raise RuntimeError(f"ledger verify failed: {finished.stdout}{finished.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(baseline: Path, node_dir: Path, repeats: int) -> dict[str, Any]:
    sources = {"baseline": baseline, "after": HERE}
    walls: dict[str, list[float]] = {way: [] for way in WAYS}
    cpus: dict[str, list[float]] = {way: [] for way in WAYS}
    for repeat in range(repeats):
        for way in WAYS:
            which, _, mode = way.partition("_")
            wall, cpu = run_verify(sources[which], node_dir, mode == "one_process")
            walls[way].append(wall)
            cpus[way].append(cpu)
            print(f"  run {repeat + 1}/{repeats} {way:<22} wall {wall:6.2f} s  cpu {cpu:6.2f} s")
    figures: dict[str, Any] = {
        "wall_s": {way: statistics.median(values) for way, values in walls.items()},
        "cpu_s": {way: statistics.median(values) for way, values in cpus.items()},
        "runs": {"wall_s": walls, "cpu_s": cpus},
    }
    for measure_name in ("wall_s", "cpu_s"):
        medians = figures[measure_name]
        figures[f"baseline_over_after_{measure_name}"] = {
            mode: medians[f"baseline_{mode}"] / medians[f"after_{mode}"]
            for mode in ("pool", "one_process")
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-tree", type=Path, required=True, help="baseline tree")
    parser.add_argument("--sizes", default="100000", help="ledger sizes, ascending")
    parser.add_argument("--repeats", type=int, default=3, help="alternated runs per way")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the node folders")
    args = parser.parse_args()
    results: dict[str, Any] = {"sizes": {}}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-verify-") as temporary:
        for size in sorted(int(text) for text in args.sizes.split(",")):
            print(f"filling a ledger of {size:,} entries ...", flush=True)
            node_dir = node_folder(Path(temporary) / f"node-{size}", size)
            load_before = os.getloadavg()[0]
            figures = measure(args.baseline_tree.resolve(), node_dir, args.repeats)
            figures["load_average_1min"] = [load_before, os.getloadavg()[0]]
            results["sizes"][str(size)] = figures
            for measure_name in ("wall_s", "cpu_s"):
                medians = figures[measure_name]
                ratios = figures[f"baseline_over_after_{measure_name}"]
                for mode in ("pool", "one_process"):
                    print(
                        f"{size:>9,} entries {mode:<12} {measure_name:<7} baseline "
                        f"{medians[f'baseline_{mode}']:6.2f}  after {medians[f'after_{mode}']:6.2f}"
                        f"  ({ratios[mode]:.2f}x)"
                    )
    results.update(cpu_cores=os.cpu_count(), python=platform.python_version())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
