"""One round of bench_fanout's measurements, run in a fresh process against running nodes.

    python bench/fanout_rounds.py WORLD_JSON TREE OUT_JSON

Imports the coordinator from TREE (this checkout, or an earlier one unpacked for
`bench_fanout.py --baseline-tree`), so both trees are measured the same way against the
same node processes. WORLD_JSON (written by bench_fanout) names the analyst's identity
files, the nodes (name, address, pinned ledger key fingerprint), the node server
processes (for their CPU time) and a scratch folder for the results store.

What one round measures, with this process's CPU time (all threads: the coordinator's
own work) and the node processes' CPU time:

- a fresh query: each node alone (`query_node`, new channel), then all at once (bare
  `fan_out`, new channels), then `run_query` in a new session closed after it (what
  `npcs query` does);
- a replayed query_id (every node answers from its ledger: the coordinator's cost
  shows): each node alone, bare `fan_out`, `run_query` in a new session closed after it
  ("cold": every channel opened and closed, as in one `npcs query`), and `run_query` as
  the second query of a session ("warm": a tree without session channels opens new
  ones again);
- `coordinator_cpu.cpu_breakdown`: handshake, Describe, Preview, signed Query per node.
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(sys.argv[2]).resolve() / "tests"))
sys.path.insert(0, str(Path(sys.argv[2]).resolve() / "proto"))
sys.path.insert(0, str(Path(sys.argv[2]).resolve()))  # the tree measured comes first

from coordinator_cpu import cpu_breakdown
from support_node import PARTNERSHIP, count_spec

from coordinator.client import ClientCredentials
from coordinator.fanout import FanoutSettings, NodeQueryResult, fan_out, query_node
from coordinator.partnership import IdentityFiles, NodeEntry, Partnership
from coordinator.querying import QueryRun, run_query
from coordinator.results import ResultsStore
from coordinator.session import Session
from privacy.query import QuerySpec

SESSION_CHANNELS = "connections" in inspect.signature(query_node).parameters
"""Whether this tree keeps a session's channels open between its fan-outs."""


class Stopwatch:
    """Wall time and this process's CPU time (all threads: the coordinator's own work),
    and the node processes' CPU time."""

    def __init__(self, server_pids: Sequence[int]) -> None:
        self._pids = server_pids

    def __enter__(self) -> Stopwatch:
        self._nodes = self._nodes_cpu()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall_ms = (time.perf_counter() - self._wall) * 1000
        self.cpu_ms = (time.process_time() - self._cpu) * 1000
        self.nodes_cpu_ms = self._nodes_cpu() - self._nodes

    def _nodes_cpu(self) -> float:
        ticks = 0
        for pid in self._pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def check_answered(results: Sequence[NodeQueryResult], *, replayed: bool) -> None:
    for result in results:
        if result.answer is None or result.receipt is None or not result.receipt.verified:
            raise RuntimeError(f"node {result.entry.name} did not answer: {result.problem}")
        if replayed and not result.answer.replayed:
            raise RuntimeError("a node charged a replayed query_id again instead of replaying it")


class Round:
    def __init__(self, world: dict[str, Any]) -> None:
        self.identity = IdentityFiles(**{k: Path(v) for k, v in world["identity"].items()})
        self.entries = tuple(NodeEntry(**node) for node in world["nodes"])
        self.pids = world["server_pids"]
        self.store = ResultsStore(Path(world["scratch"]) / f"results-{os.getpid()}.db")
        self.credentials = ClientCredentials.load(self.identity)
        self.settings = FanoutSettings(timeout=60.0)
        self.out: dict[str, float] = {}

    def session(self) -> Session:
        return Session(
            partnership=Partnership(name=PARTNERSHIP, identity=self.identity, nodes=self.entries),
            credentials=self.credentials,
            settings=self.settings,
            store=self.store,
        )

    def timed(self, name: str, step: Callable[[], object]) -> object:
        with Stopwatch(self.pids) as watch:
            result = step()
        self.out[f"{name}_ms"] = watch.wall_ms
        self.out[f"{name}_coordinator_cpu_ms"] = watch.cpu_ms
        self.out[f"{name}_nodes_cpu_ms"] = watch.nodes_cpu_ms
        return result

    def each_alone(self, name: str, spec: Callable[[], QuerySpec], *, replayed: bool) -> None:
        """Each node alone, one after the other, each on a new channel."""
        alone: list[float] = []
        for entry in self.entries:
            with Stopwatch(()) as watch:
                result = query_node(entry, self.credentials, spec(), self.settings)
            check_answered([result], replayed=replayed)
            alone.append(watch.wall_ms)
        self.out[f"{name}_slowest_node_ms"] = max(alone)
        self.out[f"{name}_median_node_ms"] = statistics.median(alone)
        self.out[f"{name}_serial_sum_ms"] = sum(alone)

    def bare_fan_out(self, name: str, spec: QuerySpec, *, replayed: bool) -> None:
        credentials, settings = self.credentials, self.settings
        results = self.timed(
            name,
            lambda: fan_out(self.entries, lambda e: query_node(e, credentials, spec, settings)),
        )
        assert isinstance(results, dict)
        check_answered(list(results.values()), replayed=replayed)

    def command(
        self, name: str, session: Session, spec: QuerySpec, *, replayed: bool, last: bool
    ) -> None:
        """`run_query`; `last`: the session's last query, so closing it (its channels, as
        `npcs query` does before it exits) is timed with it."""

        def step() -> QueryRun:
            try:
                return run_query(session, self.entries, spec)
            finally:
                if last:
                    close(session)

        run = self.timed(name, step)
        assert isinstance(run, QueryRun)
        if not all(s.answered and (s.replayed or not replayed) for s in run.report.nodes):
            raise RuntimeError(f"{name}: not every node answered")

    def measure(self) -> dict[str, float]:
        self.each_alone("fresh", lambda: count_spec(purpose="bench"), replayed=False)
        self.bare_fan_out("fresh_fan_out", count_spec(purpose="bench"), replayed=False)
        fresh = count_spec(purpose="bench")
        self.command("fresh_run_query", self.session(), fresh, replayed=False, last=True)

        spec = count_spec(purpose="bench")
        self.bare_fan_out("replay_first_fan_out", spec, replayed=False)  # records it
        self.each_alone("replay", lambda: spec, replayed=True)
        self.bare_fan_out("replay_fan_out", spec, replayed=True)
        self.command("replay_run_query_cold", self.session(), spec, replayed=True, last=True)
        session = self.session()
        run_query(session, self.entries, spec)  # opens the session's channels
        self.command("replay_run_query_warm", session, spec, replayed=True, last=False)
        if SESSION_CHANNELS:  # each node alone over the session's open channel
            alone: list[float] = []
            for entry in self.entries:
                with Stopwatch(()) as watch:
                    result = query_node(
                        entry,
                        self.credentials,
                        spec,
                        self.settings,
                        connections=session.connections,
                    )
                check_answered([result], replayed=True)
                alone.append(watch.wall_ms)
            self.out["replay_warm_slowest_node_ms"] = max(alone)
        else:
            self.out["replay_warm_slowest_node_ms"] = self.out["replay_slowest_node_ms"]
        close(session)
        self.out.update(cpu_breakdown(self.credentials, self.entries, spec))
        return self.out


def close(session: Session) -> None:
    closing = getattr(session, "close", None)
    if closing is not None:
        closing()


def main() -> None:
    world = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    measuring = Round(world)
    session = measuring.session()
    run_query(session, measuring.entries, count_spec(purpose="bench"))  # warm up: imports
    close(session)
    Path(sys.argv[3]).write_text(json.dumps(measuring.measure()), encoding="utf-8")


if __name__ == "__main__":
    main()
