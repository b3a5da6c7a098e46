"""Round-trip latency of one DP query over loopback mTLS, next to the engine's own time.

Builds a node with about 1M synthetic `reports` rows, starts it on 127.0.0.1, and times
the same kind of query (a count by county, charged to the ledger with fsync) two ways:
through gRPC with a signed request (what an analyst sees), and by calling the server's
own engine in-process (validate, check signature, plan, charge, release). The difference
is the cost of the wire: TLS, HTTP/2, protobuf, authorisation.

Prints p50/p99 and writes bench/results/node.json. Not a test.

    python bench/bench_node.py [--runs 60] [--children 4700000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support_node import make_node_world, node_stub, query_request, sign_query

from kernel.identity import peer_from_certificate
from kernel.keyfiles import load_certificate_file
from node.server import running_node
from node.settings import BudgetSettings
from node.store import DataStore
from privacy.query import GroupByColumn, PrivacyLoss, QuerySpec, Statistic

RESULTS = Path(__file__).with_name("results") / "node.json"


def query() -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="reports",
        statistic=Statistic.COUNT,
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=Decimal("0.0001")),
        purpose="benchmark",
    )


def percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    p99_index = min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[p99_index], 3),
        "min_ms": round(ordered[0], 3),
    }


def timed_interleaved(
    runs: int, first: Callable[[], object], second: Callable[[], object]
) -> tuple[list[float], list[float]]:
    """Alternate the two so drift (other load on the machine, caches) hits both alike."""
    first()  # warm up (OpenDP import, file cache, TLS session)
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for once, bucket in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            once()
            bucket.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--children", type=int, default=4_700_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-node-") as scratch:
        started = time.perf_counter()
        world = make_node_world(Path(scratch), datasets=("reports",), children=args.children)
        setup_s = time.perf_counter() - started
        budget = BudgetSettings(total_rho_per_unit_kind={"child": "1000"}, max_rho_per_query="1")
        with running_node(world.node.root, budget=budget) as node:
            snapshot = DataStore(world.node, node.engine.schema).current("reports")
            rows = snapshot.rows if snapshot else 0
            peer = peer_from_certificate(load_certificate_file(world.alice.tls_cert))

            def in_process() -> object:
                spec = query()
                return node.engine.answer(spec, peer, sign_query(spec, world.alice))

            with node_stub(world, node.port, world.alice) as stub:

                def over_grpc() -> object:
                    return stub.Query(query_request(query(), world.alice), timeout=60)

                engine_ms, rpc_ms = timed_interleaved(args.runs, in_process, over_grpc)

    engine, rpc = percentiles(engine_ms), percentiles(rpc_ms)
    result: dict[str, Any] = {
        "benchmark": "node query round trip over loopback mTLS vs in-process engine",
        "rows": rows,
        "runs": args.runs,
        "query": "count of reports by county (3 cells), rho 0.0001, charged with fsync",
        "engine": engine,
        "grpc_round_trip": rpc,
        "wire_overhead_p50_ms": round(rpc["p50_ms"] - engine["p50_ms"], 3),
        "ratio_p50": round(rpc["p50_ms"] / engine["p50_ms"], 3),
        "setup_s": round(setup_s, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{rows:,} rows, {args.runs} runs each")
    print(f"engine in-process   p50 {engine['p50_ms']:8.2f} ms   p99 {engine['p99_ms']:8.2f} ms")
    print(f"gRPC over mTLS      p50 {rpc['p50_ms']:8.2f} ms   p99 {rpc['p99_ms']:8.2f} ms")
    print(
        f"wire overhead p50 {result['wire_overhead_p50_ms']:.2f} ms "
        f"(ratio {result['ratio_p50']:.3f}x); wrote {RESULTS}"
    )


if __name__ == "__main__":
    main()
