"""Fan-out to 38 real nodes over loopback mTLS: wall time against the slowest node.

Builds one partnership CA and 38 node folders with a little synthetic `incidents` data,
serves them from a few child processes on 127.0.0.1 (in-process `running_node` servers,
so the coordinator in this process has its own interpreter lock), and times a count
query the way `npcs query` runs it (`coordinator.querying.run_query`: Preview with the
node's description, signed Query per node, receipts checked, report pooled and stored)
two ways, interleaved:

- sequentially, one node at a time (`coordinator.fanout.query_node`): each node's own
  time; the slowest is the baseline ("slowest node"), their sum the serial cost;
- all 38 at once, through `run_query` (and through bare `fan_out`, without the report);
- the same two ways again for a replayed query_id (every node answers it from its
  ledger: no release, no charge), so the node side is cheap and the coordinator's own
  cost shows (issue 12 targets: wall minus the slowest node <= 50 ms, coordinator CPU
  <= 1 ms per node).

Prints medians over `--rounds` and writes bench/results/fanout.json. Not a test.
DESIGN.md section 10 target: wall <= slowest node + 50 ms. Note that on this machine all
38 nodes share the same 2 cores, so the nodes' own CPU work cannot overlap beyond 2x;
the JSON also reports the serial sum / cores as a floor the wall time cannot beat here.

    python bench/bench_fanout.py [--nodes 38] [--rounds 5] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
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

from coordinator_cpu import cpu_breakdown
from support_node import (
    PARTNERSHIP,
    NodeWorld,
    _configure_node,
    _load_synthetic_data,
    count_spec,
    make_node_world,
)

from coordinator.ca import CertificateAuthority, load_csr
from coordinator.client import ClientCredentials
from coordinator.fanout import FanoutSettings, NodeQueryResult, fan_out, query_node
from coordinator.partnership import IdentityFiles, NodeEntry, Partnership
from coordinator.querying import run_query
from coordinator.results import ResultsStore
from coordinator.session import Session
from kernel.keyfiles import certificate_pem, load_ed25519_public_key
from node.layout import NodePaths
from node.provision import init_node_folder, install_certificate
from privacy import tlog
from privacy.query import QuerySpec

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


def one_round(
    session: Session, entries: Sequence[NodeEntry], servers: NodeServers
) -> dict[str, float]:
    """Each node alone, then all at once (bare fan-out and the full `npcs query` path)."""
    settings, credentials = session.settings, session.credentials
    per_node: dict[str, float] = {}
    for entry in entries:
        with Stopwatch() as alone:
            result = query_node(entry, credentials, count_spec(purpose="bench"), settings)
        check_answered([result])
        per_node[entry.name] = alone.wall_ms

    spec = count_spec(purpose="bench")
    server_cpu_started = servers.cpu_ms()
    with Stopwatch() as together:
        results = fan_out(entries, lambda e: query_node(e, credentials, spec, settings))
    fan_out_server_cpu_ms = servers.cpu_ms() - server_cpu_started
    check_answered(list(results.values()))

    with Stopwatch() as command:
        report = run_query(session, entries, count_spec(purpose="bench")).report
    answered = sum(1 for status in report.nodes if status.answered)
    if answered != len(entries):
        raise RuntimeError(f"run_query: only {answered} of {len(entries)} nodes answered")
    return {
        **replay_round(session, entries, spec),
        **cpu_breakdown(credentials, entries, spec),
        "slowest_node_ms": max(per_node.values()),
        "median_node_ms": statistics.median(per_node.values()),
        "serial_sum_ms": sum(per_node.values()),
        "fan_out_ms": together.wall_ms,
        "fan_out_coordinator_cpu_ms": together.cpu_ms,
        "fan_out_nodes_cpu_ms": fan_out_server_cpu_ms,
        "run_query_ms": command.wall_ms,
        "run_query_coordinator_cpu_ms": command.cpu_ms,
    }


def replay_round(
    session: Session, entries: Sequence[NodeEntry], spec: QuerySpec
) -> dict[str, float]:
    """`spec` again (every node has recorded it): each node alone, then all at once."""
    settings, credentials = session.settings, session.credentials
    alone_ms: list[float] = []
    for entry in entries:
        with Stopwatch() as alone:
            result = query_node(entry, credentials, spec, settings)
        check_replayed([result])
        alone_ms.append(alone.wall_ms)
    with Stopwatch() as together:
        results = fan_out(entries, lambda e: query_node(e, credentials, spec, settings))
    check_replayed(list(results.values()))
    with Stopwatch() as command:
        report = run_query(session, entries, spec).report
    if not all(status.answered and status.replayed for status in report.nodes):
        raise RuntimeError("run_query of a replayed query: not every node replayed it")
    return {
        "replay_slowest_node_ms": max(alone_ms),
        "replay_fan_out_ms": together.wall_ms,
        "replay_fan_out_coordinator_cpu_ms": together.cpu_ms,
        "replay_run_query_ms": command.wall_ms,
        "replay_run_query_coordinator_cpu_ms": command.cpu_ms,
    }


def check_replayed(results: Sequence[NodeQueryResult]) -> None:
    check_answered(results)
    if not all(result.answer is not None and result.answer.replayed for result in results):
        raise RuntimeError("a node charged a replayed query_id again instead of replaying it")


def summarize(rounds: list[dict[str, float]], cores: int, nodes: int) -> dict[str, Any]:
    median = {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}
    wall, fan, slowest, serial = (
        median["run_query_ms"],
        median["fan_out_ms"],
        median["slowest_node_ms"],
        median["serial_sum_ms"],
    )
    floor = serial / min(cores, nodes)
    return {
        "medians_ms": median,
        "run_query_minus_slowest_ms": round(wall - slowest, 1),
        "fan_out_minus_slowest_ms": round(fan - slowest, 1),
        "target_minus_slowest_ms": TARGET_OVERHEAD_MS,
        "meets_target": wall - slowest <= TARGET_OVERHEAD_MS,
        "run_query_over_serial_sum": round(wall / serial, 3),
        "fan_out_over_serial_sum": round(fan / serial, 3),
        "cpu_floor_ms": round(floor, 1),
        "cpu_floor_note": "serial sum / cores: all nodes share this machine's cores",
        "run_query_minus_cpu_floor_ms": round(wall - floor, 1),
        "coordinator_cpu_per_node_ms": round(median["fan_out_coordinator_cpu_ms"] / nodes, 2),
        "replay_run_query_minus_slowest_ms": round(
            median["replay_run_query_ms"] - median["replay_slowest_node_ms"], 1
        ),
        "replay_fan_out_minus_slowest_ms": round(
            median["replay_fan_out_ms"] - median["replay_slowest_node_ms"], 1
        ),
        "replay_coordinator_cpu_per_node_ms": round(
            median["replay_fan_out_coordinator_cpu_ms"] / nodes, 2
        ),
        "replay_run_query_coordinator_cpu_per_node_ms": round(
            median["replay_run_query_coordinator_cpu_ms"] / nodes, 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=38)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--children", type=int, default=5_000)
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        world, nodes = build_nodes(root, args.nodes, args.children)
        setup_s = time.perf_counter() - started
        identity = IdentityFiles(
            ca_certificate=world.alice.ca_cert,
            certificate=world.alice.tls_cert,
            tls_key=world.alice.tls_key,
            signing_key=world.alice.signing_key,
        )
        servers = NodeServers(nodes, args.processes)
        with servers as addresses:
            entries = tuple(
                entry_for(f"n{i:02d}", node, address)
                for i, (node, address) in enumerate(zip(nodes, addresses, strict=True))
            )
            session = Session(
                partnership=Partnership(name=PARTNERSHIP, identity=identity, nodes=entries),
                credentials=ClientCredentials.load(identity),
                settings=FanoutSettings(timeout=60.0),
                store=ResultsStore(root / "results" / "results.db"),
            )
            one_round(session, entries, servers)  # warm up: OpenDP import, first plans
            rounds = []
            for number in range(1, args.rounds + 1):
                rounds.append(one_round(session, entries, servers))
                print(
                    f"round {number}: slowest node {rounds[-1]['slowest_node_ms']:.1f} ms, "
                    f"serial sum {rounds[-1]['serial_sum_ms']:.1f} ms, fan-out "
                    f"{rounds[-1]['fan_out_ms']:.1f} ms, run_query "
                    f"{rounds[-1]['run_query_ms']:.1f} ms"
                )

    summary = summarize(rounds, cores, args.nodes)
    result: dict[str, Any] = {
        "benchmark": "fan-out of one signed count query (Preview, Query) to N nodes",
        "nodes": args.nodes,
        "server_processes": args.processes,
        "children_per_node": args.children,
        "rounds": args.rounds,
        **summary,
        "per_round_ms": [{k: round(v, 1) for k, v in r.items()} for r in rounds],
        "cores": cores,
        "setup_s": round(setup_s, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    med = summary["medians_ms"]
    print(
        f"{args.nodes} nodes in {args.processes} server processes, {cores} cores, "
        f"medians of {args.rounds} rounds"
    )
    print(f"slowest node alone   {med['slowest_node_ms']:8.1f} ms")
    print(f"serial sum           {med['serial_sum_ms']:8.1f} ms")
    print(
        f"fan_out (bare)       {med['fan_out_ms']:8.1f} ms   coordinator CPU "
        f"{med['fan_out_coordinator_cpu_ms']:.1f} ms, nodes' CPU "
        f"{med['fan_out_nodes_cpu_ms']:.0f} ms (10 ms ticks)"
    )
    print(
        f"run_query (npcs)     {med['run_query_ms']:8.1f} ms   wall - slowest "
        f"{summary['run_query_minus_slowest_ms']:.1f} ms (target <= {TARGET_OVERHEAD_MS:.0f})"
        f"   wall / serial {summary['run_query_over_serial_sum']:.3f}"
    )
    print(f"run_query coordinator CPU {med['run_query_coordinator_cpu_ms']:.1f} ms")
    print(
        f"replayed query_id: slowest node {med['replay_slowest_node_ms']:.1f} ms, fan_out "
        f"{med['replay_fan_out_ms']:.1f} ms (- slowest "
        f"{summary['replay_fan_out_minus_slowest_ms']:.1f}), run_query "
        f"{med['replay_run_query_ms']:.1f} ms (- slowest "
        f"{summary['replay_run_query_minus_slowest_ms']:.1f}; target <= 50); coordinator CPU "
        f"per node {summary['replay_coordinator_cpu_per_node_ms']:.2f} ms fan_out, "
        f"{summary['replay_run_query_coordinator_cpu_per_node_ms']:.2f} ms run_query "
        "(target <= 1)"
    )
    steps = {k[13:]: v for k, v in med.items() if k.startswith("cpu_per_node_")}
    print(f"coordinator CPU per node (replay, one node at a time): {steps}")
    print(
        f"cpu floor (serial / {min(cores, args.nodes)} cores) {summary['cpu_floor_ms']:.1f} ms; "
        f"wall - floor {summary['run_query_minus_cpu_floor_ms']:.1f} ms; wrote {RESULTS}"
    )


if __name__ == "__main__":
    main()
