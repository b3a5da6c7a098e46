"""Fan-out to 38 real nodes over loopback mTLS: the coordinator's CPU and wall time.

Builds one partnership CA and 38 node folders with a little synthetic `incidents` data,
serves them from a few child processes on 127.0.0.1 (in-process `running_node` servers),
and measures the coordinator in a fresh process per round (`bench/fanout_rounds.py`,
which says what one round measures): a fresh query and a replayed query_id (every node
answers it from its ledger, so the node side is cheap and the coordinator's own cost
shows), each node alone against all at once (bare `fan_out`, and `run_query` as
`npcs query` runs it: Preview with the node's description, signed Query, receipts
checked, report pooled and stored), with the coordinator's CPU (all its threads) and the
node processes' CPU. A replayed `run_query` is measured "cold" (a new session: every
channel opened, as in one `npcs query`) and "warm" (a second query in that session).

`--baseline-tree DIR` (an earlier commit unpacked, e.g. `git archive REV | tar -x -C DIR`)
runs that tree's coordinator against the same node processes, alternated with this
tree's round by round, and prints this tree's medians over the baseline's.

Issue 12 targets, for the replayed query_id: wall minus the slowest node <= 50 ms and
coordinator CPU <= 1 ms per node. All 38 nodes share this machine's cores with the
coordinator, so the JSON also reports the CPU the nodes used. Writes
bench/results/fanout.json. Not a test.

    python bench/bench_fanout.py [--nodes 38] [--rounds 5] [--processes 2] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proto"))

from support_node import (
    PARTNERSHIP,
    NodeWorld,
    _configure_node,
    _load_synthetic_data,
    make_node_world,
)

from coordinator.ca import CertificateAuthority, load_csr
from coordinator.fanout import NodeQueryResult
from coordinator.partnership import NodeEntry
from kernel.keyfiles import certificate_pem, load_ed25519_public_key
from node.layout import NodePaths
from node.provision import init_node_folder, install_certificate
from privacy import tlog

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results") / "fanout.json"
TARGET_OVERHEAD_MS = 50.0
BENCH_BUDGET = {"total_rho_per_unit_kind": {"child": "100000"}, "max_rho_per_query": "1"}


# ---------------------------------------------------------------------------------
# The partnership: one CA, many node folders


def add_node(world: NodeWorld, name: str, children: int) -> NodePaths:
    """A node folder under the world's CA with its own ledger and synthetic incidents."""
    node = init_node_folder(world.root / name, name=name, partnership=PARTNERSHIP)
    authority = CertificateAuthority.load(world.ca_dir)
    issued = authority.sign_csr(load_csr(node.tls_csr), role="node", name=name)
    (world.root / f"{name}.crt").write_bytes(certificate_pem(issued.certificate))
    install_certificate(node.root, world.root / f"{name}.crt", world.ca_dir / "ca.crt")
    _configure_node(node, revoked="0" * 64, extra_toml="")
    _load_synthetic_data(node, ("incidents",), children)
    return node


def build_nodes(root: Path, count: int, children: int) -> tuple[NodeWorld, list[NodePaths]]:
    world = make_node_world(root, node_name="n00", children=children)
    nodes = [world.node] + [add_node(world, f"n{i:02d}", children) for i in range(1, count)]
    return world, nodes


# ---------------------------------------------------------------------------------
# Node servers in child processes


def serve(roots: list[str], ready: Connection, stop: Any) -> None:
    """Child process: serve every node folder in `roots` until `stop` is set."""
    from node.server import ServerOptions, running_node

    options = ServerOptions(grace_seconds=1.0)
    with ExitStack() as stack:
        addresses = [
            stack.enter_context(running_node(Path(root), options, budget=BENCH_BUDGET)).address
            for root in roots
        ]
        ready.send(addresses)
        stop.wait()
    ready.send("stopped")


class NodeServers:
    """Start the node servers in `processes` children; stop (and join) them on exit."""

    def __init__(self, nodes: Sequence[NodePaths], processes: int) -> None:
        self._context = mp.get_context("spawn")  # never fork a process that holds gRPC
        self._stop = self._context.Event()
        self._nodes = nodes
        self._processes = processes
        self._children: list[tuple[Any, Connection]] = []

    def __enter__(self) -> list[str]:
        shares = [list(self._nodes[i :: self._processes]) for i in range(self._processes)]
        for share in shares:
            parent_end, child_end = self._context.Pipe()
            process = self._context.Process(
                target=serve,
                args=([str(n.root) for n in share], child_end, self._stop),
                daemon=True,
            )
            process.start()
            self._children.append((process, parent_end))
        by_root: dict[str, str] = {}
        for (_, pipe), share in zip(self._children, shares, strict=True):
            if not pipe.poll(300):
                raise RuntimeError("a node server process did not start within 300 s")
            addresses = pipe.recv()
            by_root.update(zip((str(n.root) for n in share), addresses, strict=True))
        return [by_root[str(n.root)] for n in self._nodes]

    def pids(self) -> list[int]:
        return [int(process.pid) for process, _ in self._children]

    def cpu_ms(self) -> float:
        """CPU time (user + system, all threads) the server processes have used so far."""
        ticks = 0
        for process, _ in self._children:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks * 1000 / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for process, pipe in self._children:
            if pipe.poll(30):
                pipe.recv()
            process.join(30)
            if process.is_alive():
                process.terminate()
                process.join(5)
        alive = [p.pid for p, _ in self._children if p.is_alive()]
        if alive:
            raise RuntimeError(f"node server processes {alive} did not stop")


# ---------------------------------------------------------------------------------
# Measurements


def entry_for(name: str, node: NodePaths, address: str) -> NodeEntry:
    fingerprint = tlog.key_fingerprint(load_ed25519_public_key(node.ledger_public_key))
    return NodeEntry(name=name, address=address, ledger_key_fingerprint=fingerprint)


def check_answered(results: Sequence[NodeQueryResult]) -> None:
    for result in results:
        if result.answer is None or result.receipt is None or not result.receipt.verified:
            raise RuntimeError(f"node {result.entry.name} did not answer: {result.problem}")


class Stopwatch:
    """Wall time and this process's CPU time (all threads: the coordinator's own work)."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall_ms = (time.perf_counter() - self._wall) * 1000
        self.cpu_ms = (time.process_time() - self._cpu) * 1000


def run_round(world_file: Path, tree: Path) -> dict[str, float]:
    """One round of `fanout_rounds.py` in a fresh process importing `tree`'s coordinator."""
    out = world_file.with_name(f"round-{tree.name}-{time.monotonic_ns()}.json")
    command = [sys.executable, str(Path(__file__).with_name("fanout_rounds.py"))]
    subprocess.run([*command, str(world_file), str(tree), str(out)], check=True, cwd=tree)
    measured: dict[str, float] = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return measured


def summarize(rounds: list[dict[str, float]], nodes: int) -> dict[str, Any]:
    median = {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}
    per_node = {
        f"{name}_coordinator_cpu_per_node_ms": round(
            median[f"{name}_coordinator_cpu_ms"] / nodes, 2
        )
        for name in STEPS
    }
    minus_slowest = {
        f"{name}_minus_slowest_ms": round(median[f"{name}_ms"] - median[slowest], 1)
        for name, slowest in MINUS_SLOWEST.items()
    }
    return {"medians_ms": median, **per_node, **minus_slowest}


STEPS = (
    "fresh_fan_out",
    "fresh_run_query",
    "replay_fan_out",
    "replay_run_query_cold",
    "replay_run_query_warm",
)
MINUS_SLOWEST = {
    "fresh_fan_out": "fresh_slowest_node_ms",
    "fresh_run_query": "fresh_slowest_node_ms",
    "replay_fan_out": "replay_slowest_node_ms",
    "replay_run_query_cold": "replay_slowest_node_ms",
    "replay_run_query_warm": "replay_warm_slowest_node_ms",
}


def ratios(this: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    """This tree's figure over the baseline's: per-node CPU, wall minus slowest, wall."""
    mine, theirs = headline(this), headline(baseline)
    return {key: round(value / theirs[key], 3) for key, value in mine.items() if theirs.get(key)}


def headline(summary: dict[str, Any]) -> dict[str, float]:
    medians = summary["medians_ms"]
    figures = {k: v for k, v in summary.items() if k.endswith(("_per_node_ms", "_slowest_ms"))}
    figures |= {f"{name}_ms": medians[f"{name}_ms"] for name in STEPS}
    figures |= {k: v for k, v in medians.items() if k.startswith("cpu_per_node_")}
    return figures


def print_summary(label: str, summary: dict[str, Any]) -> None:
    med = summary["medians_ms"]
    print(f"--- {label}")
    for name in STEPS:
        print(
            f"{name:24s} wall {med[f'{name}_ms']:7.1f} ms (- slowest "
            f"{summary[f'{name}_minus_slowest_ms']:6.1f}), coordinator CPU "
            f"{summary[f'{name}_coordinator_cpu_per_node_ms']:.2f} ms/node, nodes' CPU "
            f"{med[f'{name}_nodes_cpu_ms']:.0f} ms"
        )
    steps = {k[13:]: v for k, v in med.items() if k.startswith("cpu_per_node_")}
    print(f"coordinator CPU per node, one node at a time (replay): {steps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=38)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--children", type=int, default=5_000)
    parser.add_argument("--baseline-tree", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    trees = {"this": ROOT} | ({"baseline": args.baseline_tree} if args.baseline_tree else {})
    loads: list[float] = []
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        world, nodes = build_nodes(root, args.nodes, args.children)
        setup_s = time.perf_counter() - started
        servers = NodeServers(nodes, args.processes)
        with servers as addresses:
            world_file = root / "world.json"
            world_file.write_text(
                json.dumps(
                    {
                        "identity": {
                            "ca_certificate": str(world.alice.ca_cert),
                            "certificate": str(world.alice.tls_cert),
                            "tls_key": str(world.alice.tls_key),
                            "signing_key": str(world.alice.signing_key),
                        },
                        "nodes": [
                            dataclasses.asdict(entry_for(f"n{i:02d}", node, address))
                            for i, (node, address) in enumerate(zip(nodes, addresses, strict=True))
                        ],
                        "server_pids": servers.pids(),
                        "scratch": str(root),
                    }
                ),
                encoding="utf-8",
            )
            for number in range(1, args.rounds + 1):
                order = list(trees.items())
                if number % 2 == 0:
                    order.reverse()  # alternate which tree goes first
                for label, tree in order:
                    loads.append(os.getloadavg()[0])
                    rounds[label].append(run_round(world_file, tree))
                    last = rounds[label][-1]
                    print(
                        f"round {number} {label}: replay fan_out "
                        f"{last['replay_fan_out_ms']:.1f} ms, coordinator CPU "
                        f"{last['replay_fan_out_coordinator_cpu_ms'] / args.nodes:.2f} ms/node; "
                        f"run_query cold {last['replay_run_query_cold_ms']:.1f} ms, warm "
                        f"{last['replay_run_query_warm_ms']:.1f} ms",
                        flush=True,
                    )

    summaries = {label: summarize(rounds[label], args.nodes) for label in trees}
    result: dict[str, Any] = {
        "benchmark": "fan-out of one signed count query (Preview, Query) to N nodes",
        "nodes": args.nodes,
        "server_processes": args.processes,
        "children_per_node": args.children,
        "rounds": args.rounds,
        "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
        "targets": {"replay minus slowest ms": TARGET_OVERHEAD_MS, "cpu per node ms": 1.0},
        **summaries["this"],
        "baseline": summaries.get("baseline"),
        "this_over_baseline": (
            ratios(summaries["this"], summaries["baseline"]) if "baseline" in summaries else None
        ),
        "per_round_ms": {
            label: [{k: round(v, 2) for k, v in r.items()} for r in rs]
            for label, rs in rounds.items()
        },
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },
        "cores": os.cpu_count(),
        "setup_s": round(setup_s, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for label, summary in summaries.items():
        print_summary(label, summary)
    if result["this_over_baseline"]:
        print("this / baseline:", json.dumps(result["this_over_baseline"], indent=1))
    print(f"load average {result['load_average_1min']}; wrote {args.out}")


if __name__ == "__main__":
    main()
