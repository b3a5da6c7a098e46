"""Ledger costs, each against a baseline run in the same process (issue 12; issue 11).

For each size (default 10,000 and 100,000 entries; add 1000000 to --sizes for 1M):
  * start-up before the first answer: `Ledger.open` + the O(log n) start-up check, against
    `Ledger.open` + the full self-check that ran before serving until now (every entry
    re-hashed, every tree node and checkpoint root recomputed);
  * the background re-verification from an empty verified-through mark (once);
  * `ledger verify` (every entry and signature): chunks on a process pool, one worker per core,
    against the same verification in one process;
  * `ledger show --last 5`: the tail read, against reading every entry (what show did).
At the largest size, charge latency, interleaved sample by sample on one disk: a bare
SQLite WAL commit (one fsync), a charge without marker, with the two-slot high-water
marker raised before the charge returns (until now: one fdatasync on the path), and with
the marker raised by its trail a few ms behind the commit (now); then charges/s with 1
and 8 writer processes.

Prints the results and writes them to bench/results/ledger.json. Not a test.

    python bench/bench_ledger.py [--sizes 10000,100000] [--samples 1000] [--dir DIR]
    python bench/bench_ledger.py --start-up-only --sizes 1000000 --repeats 1
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kernel.keyfiles import generate_ed25519_key, private_key_pem
from node.high_water import HighWaterFile
from privacy.epsilon import epsilon_for_rho_units
from privacy.ledger.charging import new_entry
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.high_water import HighWaterMark, HighWaterStore
from privacy.ledger.reader import LedgerReader
from privacy.ledger.writer import Ledger
from privacy.opendp_setup import opendp_version
from privacy.policy import BudgetPolicy

# Run as a script: put tests/ on the path for the shared test helpers.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support_ledger import charge_request

ORIGIN = "npcs/bench/node-a/ledger"
RESULTS = Path(__file__).with_name("results") / "ledger.json"
START_UP_RESULTS = RESULTS.with_name("ledger-start-up.json")
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

    def commit(self) -> None:
        self.count += 1
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("INSERT INTO t (id, payload) VALUES (?, ?)", (self.count, ANSWER))
        self.connection.execute("COMMIT")


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


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def alternated(
    before: Callable[[], object], after: Callable[[], object], repeats: int
) -> dict[str, float]:
    """Median seconds of `before` and `after`, run alternately `repeats` times each."""
    befores, afters = [], []
    for _ in range(repeats):
        befores.append(timed(before))
        afters.append(timed(after))
    before_s, after_s = statistics.median(befores), statistics.median(afters)
    return {"before_s": before_s, "after_s": after_s, "before_over_after": before_s / after_s}


def start_up_figures(path: Path, key: Ed25519PrivateKey, repeats: int) -> dict[str, float]:
    """Open + start-up check against open + the full self-check, alternated."""
    marker = HighWaterFile(path.with_name("ledger.high-water"))

    def opened() -> Ledger:
        return Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY, high_water=marker)

    def start_up_before() -> None:  # the full self-check that ran before serving
        with opened() as ledger:
            assert ledger.verify(ledger.public_key, all_signatures=False).ok

    def start_up_after() -> None:
        with opened() as ledger:
            assert ledger.startup_check().ok

    with opened() as ledger:
        marker.save(HighWaterMark.of(ledger.latest_checkpoint()).sign(key))
    print(f"  start-up ({repeats} alternated) ...", flush=True)
    return alternated(start_up_before, start_up_after, repeats)


def measure_size(path: Path, key: Ed25519PrivateKey, size: int, repeats: int) -> dict[str, Any]:
    with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY) as ledger:
        ledger._conn.execute("DELETE FROM verified_mark")
        background_s = timed(ledger.continue_verification)
    figures: dict[str, Any] = {"entries": size, "background_pass_s": background_s}
    figures["start_up"] = start_up_figures(path, key, repeats)

    reader = LedgerReader.open_existing(path)
    public_key = key.public_key()
    workers = os.cpu_count() or 1
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        pool.submit(int).result()  # start the workers before the clock
        print(f"  ledger verify ({max(1, repeats // 2)} alternated) ...", flush=True)
        figures["verify"] = alternated(
            lambda: reader.verify(public_key),
            lambda: reader.verify(public_key, pool=pool),
            max(1, repeats // 2),
        )
    figures["verify"]["pool_workers"] = workers
    figures["show_last_5"] = alternated(
        lambda: sum(1 for _ in reader.iter_entries()), lambda: reader.tail(5), repeats
    )
    reader.close()
    return figures


def charge_latencies(
    path: Path, key: Ed25519PrivateKey, bare: BareCommit, samples: int
) -> dict[str, Any]:
    """Interleave, sample by sample: bare commit, charge without marker, with the two-slot
    marker raised before the charge returns (until now), and raised by the trail a few
    ms behind the commit (now; privacy.ledger.high_water_trail)."""
    variants: dict[str, tuple[HighWaterStore | None, bool]] = {
        "no_marker": (None, False),
        "marker_before_return": (HighWaterFile(path.with_name("sync.high-water")), False),
        "marker_trailing": (HighWaterFile(path.with_name("ledger.high-water")), True),
    }
    ledgers = {
        name: Ledger.open(
            path,
            origin=ORIGIN,
            signing_key=key,
            policy=POLICY,
            high_water=store,
            trail_high_water=trails,
        )
        for name, (store, trails) in variants.items()
    }
    times: dict[str, list[float]] = {"bare_commit": [], **{name: [] for name in ledgers}}
    for number in range(samples + 50):
        measured = {"bare_commit": timed(bare.commit)}
        for name, ledger in ledgers.items():
            request = charge(f"{name}-{number}")
            measured[name] = timed(
                functools.partial(ledger.charge_and_release, request, lambda: ANSWER)
            )
        if number >= 50:  # the first 50 warm up
            for name, seconds in measured.items():
                times[name].append(seconds)
    for ledger in ledgers.values():
        ledger.close()
    p50 = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    return {
        "samples": samples,
        "p50_ms": p50,
        "p99_ms": {name: percentile(values, 0.99) * 1e3 for name, values in times.items()},
        "marker_cost_p50_ms": {
            "before_return": p50["marker_before_return"] - p50["no_marker"],
            "trailing": p50["marker_trailing"] - p50["no_marker"],
        },
        "target_charge_p50_ms": 1.0,
    }


def writer(path: str, key_pem: bytes, prefix: str, count: int, go: Event) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, password=None)
    ledger = Ledger.open(
        Path(path),
        origin=ORIGIN,
        signing_key=key,  # type: ignore[arg-type]
        policy=POLICY,
        high_water=HighWaterFile(Path(path).with_name("ledger.high-water")),
    )
    epsilon_for_rho_units(COST_UNITS, ledger.delta)  # warm OpenDP before the clock starts
    go.wait()
    for number in range(count):
        ledger.charge_and_release(charge(f"{prefix}-{number}"), lambda: ANSWER)
    ledger.close()


def throughput(path: Path, key_pem: bytes, processes: int, per_process: int, tag: str) -> float:
    """Charges per second of `processes` writers on one ledger, each raising the marker."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    workers = [
        context.Process(target=writer, args=(str(path), key_pem, f"{tag}-{n}", per_process, go))
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


def start_up_only(sizes: list[int], repeats: int, folder: Path | None) -> None:
    """The start-up figures alone, for sizes where the other figures take too long."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=folder, prefix="bench-ledger-") as temporary:
        key = generate_ed25519_key()
        path = Path(temporary) / "ledger.sqlite"
        for size in sizes:
            with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY) as ledger:
                print(f"populating the ledger to {size:,} entries ...", flush=True)
                populate(ledger, size)
            figures[str(size)] = start_up_figures(path, key, repeats)
            print(json.dumps(figures[str(size)], indent=2), flush=True)
    START_UP_RESULTS.parent.mkdir(exist_ok=True)
    START_UP_RESULTS.write_text(
        json.dumps({"start_up": figures, "cpu_cores": os.cpu_count()}, indent=2) + "\n"
    )
    print(f"wrote {START_UP_RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="ledger sizes, ascending")
    parser.add_argument("--repeats", type=int, default=3, help="alternated runs per figure")
    parser.add_argument("--samples", type=int, default=1000, help="charges per latency figure")
    parser.add_argument("--writes", type=int, default=1000, help="charges per throughput run")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the ledger files")
    parser.add_argument(
        "--start-up-only",
        action="store_true",
        help=f"measure only the start-up check (e.g. at 1000000) and write {START_UP_RESULTS.name}",
    )
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if args.start_up_only:
        start_up_only(sizes, args.repeats, args.dir)
        return

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-ledger-") as temporary:
        directory = Path(temporary)
        key = generate_ed25519_key()
        path = directory / "ledger.sqlite"
        by_size: dict[str, Any] = {}
        for size in sizes:
            with Ledger.open(path, origin=ORIGIN, signing_key=key, policy=POLICY) as ledger:
                print(f"populating the ledger to {size:,} entries ...", flush=True)
                populate(ledger, size)
            by_size[str(size)] = measure_size(path, key, size, args.repeats)
            print(json.dumps(by_size[str(size)], indent=2), flush=True)
        print(f"charge latency: {args.samples} interleaved samples ...", flush=True)
        bare = BareCommit(directory)
        latency = charge_latencies(path, key, bare, args.samples)
        bare.connection.close()
        print("throughput: 1 and 8 writer processes ...", flush=True)
        key_pem = private_key_pem(key)
        one_writer = throughput(path, key_pem, 1, args.writes, "t1")
        eight_writers = throughput(path, key_pem, 8, max(args.writes // 8, 1), "t8")

    results: dict[str, Any] = {
        "sizes": by_size,
        "charge_latency_at_entries": sizes[-1],
        "charge": latency,
        "charges_per_second_with_marker": {"1_writer": one_writer, "8_writers": eight_writers},
        "targets": {"start_up_s": 0.1, "verify_100k_s": 3.0, "charge_p50_ms": 1.0},
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "opendp": opendp_version(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print()
    for size_text, figures in by_size.items():
        for name in ("start_up", "verify", "show_last_5"):
            row = figures[name]
            print(
                f"{int(size_text):>9,} entries  {name:<12} before {row['before_s']:8.3f} s  "
                f"after {row['after_s']:8.3f} s  ({row['before_over_after']:.1f}x)"
            )
        print(f"{int(size_text):>9,} entries  background pass {figures['background_pass_s']:.2f} s")
    p50 = latency["p50_ms"]
    print(
        "charge p50 ms: bare commit {bare_commit:.3f}, no marker {no_marker:.3f}, marker "
        "before return {marker_before_return:.3f}, marker trailing {marker_trailing:.3f}".format(
            **p50
        )
    )
    print(f"charges per second (two-slot marker): 1 writer {one_writer:,.0f}, "
          f"8 writers {eight_writers:,.0f}")  # fmt: skip
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
