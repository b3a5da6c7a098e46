"""Ledger charge latency at 100,000 entries, against a bare SQLite WAL commit, and throughput.

Measures, in one run on the same disk:
  * baseline: one bare SQLite WAL transaction (BEGIN IMMEDIATE, INSERT, COMMIT) with
    synchronous=FULL, i.e. one fsync;
  * one `charge_and_release` (trivial release) on a ledger that already holds 100,000
    entries: p50 / p99, and the p50 ratio to the baseline (target p50 <= 1 ms);
  * charges per second with 1 and with 8 writer processes on one ledger file.

Prints the results and writes them to bench/results/ledger.json. Not a test.

    python bench/bench_ledger.py [--entries 100000] [--samples 2000] [--dir DIR] [--high-water]

`--high-water`: measured charges and writers also raise the node's high-water marker
(one atomic, fsync'd file write per checkpoint, as `npcs-node serve` does).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from kernel.keyfiles import generate_ed25519_key, private_key_pem
from node.high_water import HighWaterFile
from privacy.epsilon import epsilon_for_rho_units
from privacy.ledger.charging import new_entry
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.writer import Ledger
from privacy.opendp_setup import opendp_version
from privacy.policy import BudgetPolicy

# Run as a script: put tests/ on the path for the shared test helpers.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support_ledger import charge_request

ORIGIN = "npcs/bench/node-a/ledger"
RESULTS = Path(__file__).with_name("results") / "ledger.json"
POLICY = BudgetPolicy({"child": 10**15}, 10**9)
COST_UNITS = 10_000


def charge(query_id: str) -> ChargeRequest:
    query = f'{{"dataset":"incidents","statistic":"count","by":["year"],"id":"{query_id}"}}'
    return charge_request(
        query_id,
        query.encode(),
        analyst="analyst-a",
        dataset="incidents",
        cost_units=COST_UNITS,
        purpose="benchmark",
        mechanism_summary='{"count":{"distribution":"gaussian","scale":12.5}}',
        snapshot_id="bench-snapshot",
        signed_request=b"x" * 96,
    )


ANSWER = json.dumps({"cells": [{"year": y, "count": 17.3} for y in range(2015, 2025)]}).encode()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class BareCommit:
    """The baseline: one bare SQLite WAL transaction with synchronous=FULL (one fsync)."""

    def __init__(self, directory: Path) -> None:
        self.connection = sqlite3.connect(directory / "baseline.sqlite", isolation_level=None)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = FULL")
        self.connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
        self.count = 0

    def time_one(self) -> float:
        self.count += 1
        started = time.perf_counter()
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("INSERT INTO t (id, payload) VALUES (?, ?)", (self.count, ANSWER))
        self.connection.execute("COMMIT")
        return time.perf_counter() - started


def populate(ledger: Ledger, entries: int) -> float:
    """Fill the ledger through its own append path, in large unsynced transactions."""
    started = time.perf_counter()
    epsilon = epsilon_for_rho_units(COST_UNITS, ledger.delta)
    ledger._conn.execute("PRAGMA synchronous = OFF")
    done = ledger.size()
    while done < entries:
        batch = min(5000, entries - done)
        ledger._begin_immediate()
        for number in range(done, done + batch):
            entry = new_entry(
                charge(f"fill-{number}"),
                seq=number,
                delta=ledger.delta,
                answer=ANSWER,
                epsilon=epsilon,
                failure=None,
            )
            ledger._append(entry)
        ledger._commit()
        done += batch
        print(f"  populated {done:,} entries", flush=True)
    ledger._conn.execute("PRAGMA synchronous = FULL")
    return time.perf_counter() - started


def interleaved(
    ledger: Ledger, baseline: BareCommit, samples: int
) -> tuple[list[float], list[float]]:
    """Alternate one bare commit and one charge, so both see the same disk conditions
    (fsync latency on a shared disk drifts with other processes' writes)."""
    bare, charges = [], []
    for number in range(samples):
        bare.append(baseline.time_one())
        request = charge(f"measured-{number}")
        started = time.perf_counter()
        ledger.charge_and_release(request, lambda: ANSWER)
        charges.append(time.perf_counter() - started)
    return bare, charges


def marker_store(path: Path, enabled: bool) -> HighWaterFile | None:
    return HighWaterFile(path.with_name("ledger.high-water")) if enabled else None


def writer(path: str, key_pem: bytes, prefix: str, count: int, go: Event, *, marker: bool) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, password=None)
    ledger = Ledger.open(
        Path(path),
        origin=ORIGIN,
        signing_key=key,  # type: ignore[arg-type]
        policy=POLICY,
        high_water=marker_store(Path(path), marker),
    )
    epsilon_for_rho_units(COST_UNITS, ledger.delta)  # warm OpenDP before the clock starts
    go.wait()
    for number in range(count):
        ledger.charge_and_release(charge(f"{prefix}-{number}"), lambda: ANSWER)
    ledger.close()


def throughput(
    path: Path, key_pem: bytes, processes: int, per_process: int, tag: str, *, marker: bool
) -> float:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    workers = [
        context.Process(
            target=writer,
            args=(str(path), key_pem, f"{tag}-{n}", per_process, go),
            kwargs={"marker": marker},
        )
        for n in range(processes)
    ]
    for process in workers:
        process.start()
    time.sleep(3.0)  # let every writer import and open the ledger before the clock starts
    started = time.perf_counter()
    go.set()
    for process in workers:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"writer failed with exit code {process.exitcode}")
    return processes * per_process / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=2000, help="charges per throughput run")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the ledger files")
    parser.add_argument("--high-water", action="store_true", help="also raise the marker")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-ledger-") as temporary:
        directory = Path(temporary)
        key = generate_ed25519_key()
        key_pem = private_key_pem(key)
        bare_commit = BareCommit(directory)
        path = directory / "ledger.sqlite"
        ledger = Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY)
        print(f"populating the ledger to {args.entries:,} entries ...", flush=True)
        populate_seconds = populate(ledger, args.entries)
        started = time.perf_counter()
        report = ledger.self_check()
        self_check_seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"self-check failed: {report.problems[:3]}")
        if args.high_water:
            ledger.close()
            ledger = Ledger.open(
                path,
                origin=ORIGIN,
                signing_key=key,
                policy=POLICY,
                high_water=marker_store(path, True),
            )
        print(
            f"measuring {args.samples} charges at {ledger.size():,} entries, interleaved "
            "with bare SQLite WAL commits (synchronous=FULL) ...",
            flush=True,
        )
        interleaved(ledger, bare_commit, 50)  # warm-up
        baseline, latencies = interleaved(ledger, bare_commit, args.samples)
        bare_commit.connection.close()
        size_after = ledger.size()
        ledger.close()

        print("throughput: 1 and 8 writer processes ...", flush=True)
        one_writer = throughput(path, key_pem, 1, args.writes, "t1", marker=args.high_water)
        eight_writers = throughput(
            path, key_pem, 8, max(args.writes // 8, 1), "t8", marker=args.high_water
        )

    baseline_p50 = statistics.median(baseline)
    charge_p50 = statistics.median(latencies)
    results: dict[str, Any] = {
        "high_water_marker": args.high_water,
        "entries_before_measurement": args.entries,
        "entries_after": size_after,
        "samples": args.samples,
        "baseline_sqlite_wal_commit_ms": {
            "p50": baseline_p50 * 1e3,
            "p99": percentile(baseline, 0.99) * 1e3,
        },
        "charge_ms": {
            "p50": charge_p50 * 1e3,
            "p99": percentile(latencies, 0.99) * 1e3,
            "mean": statistics.fmean(latencies) * 1e3,
        },
        "charge_p50_over_baseline_p50": charge_p50 / baseline_p50,
        "target_charge_p50_ms": 1.0,
        "meets_target": charge_p50 * 1e3 <= 1.0,
        "charges_per_second": {"1_writer": one_writer, "8_writers": eight_writers},
        "self_check_seconds_at_100k": self_check_seconds,
        "populate_seconds": populate_seconds,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "opendp": opendp_version(),
    }
    written = RESULTS.with_stem("ledger-high-water") if args.high_water else RESULTS
    written.parent.mkdir(exist_ok=True)
    written.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"bare SQLite WAL commit (fsync): p50 {baseline_p50 * 1e3:.3f} ms, "
          f"p99 {results['baseline_sqlite_wal_commit_ms']['p99']:.3f} ms")  # fmt: skip
    print(f"ledger charge at {args.entries:,} entries: p50 {charge_p50 * 1e3:.3f} ms, "
          f"p99 {results['charge_ms']['p99']:.3f} ms "
          f"(target p50 <= 1 ms: {'met' if results['meets_target'] else 'NOT met'})")  # fmt: skip
    print(f"ratio charge p50 / bare commit p50: {results['charge_p50_over_baseline_p50']:.1f}x")
    print(f"charges per second: 1 writer {one_writer:,.0f}, 8 writers {eight_writers:,.0f}")
    print(f"self-check at {args.entries:,} entries: {self_check_seconds:.2f} s")
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
