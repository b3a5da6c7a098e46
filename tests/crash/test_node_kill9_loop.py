"""Issue 11's kill -9 loop: a real `npcs-node serve` over mTLS, SIGKILLed at random moments
while several clients send queries, and restarted, over and over.

Each client thread owns its queries (one query_id each). A call that gets no answer (the
node died under it) is retried, re-signed with the same query_id, as soon as the node is
back. Alice has a small analyst cap, so her budget runs out during the loop; bob has none.
At the end:
- no answer lost: every answer a client received is in the ledger, byte for byte;
- nothing charged undelivered: every ledger entry is one of the clients' query_ids, and a
  retry with that query_id fetches the identical release (a replay, no new charge);
- nothing charged for a refusal, and alice's spending never passed her cap;
- `npcs-node ledger verify` passes.

Each restart imports OpenDP (about 2 s here), so the number of kills is a setting:
NPCS_KILL9_LOOP_KILLS (CI default below; issue 11 asks for at least 100 in a full run).
The loop's figures are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from serve_process import start_node, stop_and_close
from support_node import NodeWorld, count_spec, make_node_world, node_channel, query_request

from coordinator.ca import CredentialPaths
from node.cli import cli
from npcs.v1 import node_pb2_grpc
from privacy.budget import rho_to_units_ceil
from privacy.ledger.reader import LedgerReader
from privacy.query import QuerySpec

pytestmark = pytest.mark.crash

KILLS = int(os.environ.get("NPCS_KILL9_LOOP_KILLS", "40"))
SEED = int(os.environ.get("NPCS_KILL9_LOOP_SEED", "1111"))
CLIENTS_PER_ANALYST = 2
QUERY_RHO = "0.001"
ALICE_CAP_RHO = "0.01"  # 10 queries: spent early in the loop, then refused
CHILDREN = 20_000  # small data: the loop measures charging, not OpenDP
CALL_TIMEOUT = 30.0
ANSWERS_WAIT = 20.0
"""How long one life of the node waits for the answers drawn before its kill."""
NO_ANSWER = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
"""How a call ends when the node dies under it: the client must retry the same query_id."""


@dataclass
class LoopRecord:
    """What the clients saw, shared by their threads (guarded by `changed`)."""

    specs: dict[str, tuple[QuerySpec, CredentialPaths]] = field(default_factory=dict)
    answers: dict[str, bytes] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    mismatches: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    sent: int = 0
    retries: int = 0
    recovered: int = 0
    """Retries answered from the ledger: charged in an earlier life, never delivered."""
    answers_this_life: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)


@dataclass
class NodeLife:
    """The node process clients talk to now; `number` grows at every restart."""

    number: int = 0
    port: int = 0
    alive: bool = False
    final: bool = False
    """The last life: clients retry what is pending, start nothing new, then stop."""
    changed: threading.Condition = field(default_factory=threading.Condition)

    def begin(self, port: int, *, final: bool = False) -> None:
        with self.changed:
            self.number, self.port, self.alive, self.final = self.number + 1, port, True, final
            self.changed.notify_all()

    def end(self) -> None:
        with self.changed:
            self.alive = False

    def next_after(self, number: int) -> tuple[int, int, bool]:
        """Wait for a life later than `number`: (number, port, final)."""
        with self.changed:
            self.changed.wait_for(lambda: self.number > number and self.alive)
            return self.number, self.port, self.final


def configure_caps(world: NodeWorld) -> None:
    """Let bob query too, and cap alice's total spending."""
    path = world.node.settings_file
    text = path.read_text(encoding="utf-8")
    analysts = 'allowed_analysts = ["alice", "bob"]'
    text = text.replace('allowed_analysts = ["alice", "carol"]', analysts)
    cap = f'alice = "{ALICE_CAP_RHO}"'
    text = text.replace("[budget.analyst_caps]\n", f"[budget.analyst_caps]\n{cap}\n")
    path.write_text(text, encoding="utf-8")


def run_client(
    world: NodeWorld, who: CredentialPaths, life: NodeLife, record: LoopRecord
) -> Callable[[], None]:
    """One client thread: new queries while the node lives, the unanswered one retried."""

    def send(stub: node_pb2_grpc.NodeStub, spec: QuerySpec, retry: bool) -> bool:
        """One attempt; False when the node gave no answer (retry in its next life)."""
        query_id = str(spec.query_id)
        with record.changed:
            record.sent += 1
            record.retries += retry
        try:
            response = stub.Query(query_request(spec, who), timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            code = error.code()
            if code in NO_ANSWER:
                return False
            with record.changed:
                record.pending.discard(query_id)
                if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    record.refused.add(query_id)
                else:
                    record.unexpected.append(f"{query_id}: {code.name} {error.details()}")
            return True
        with record.changed:
            record.pending.discard(query_id)
            earlier = record.answers.setdefault(query_id, response.release_json)
            if earlier != response.release_json:
                record.mismatches.append(query_id)
            record.recovered += retry and response.receipt.replayed
            record.answers_this_life += 1
            record.changed.notify_all()
        return True

    def client() -> None:
        unanswered: QuerySpec | None = None
        seen = 0
        while True:
            seen, port, final = life.next_after(seen)
            if final and unanswered is None:
                return
            with node_channel(world, port, who) as channel:
                stub = node_pb2_grpc.NodeStub(channel)
                while True:
                    retry = unanswered is not None
                    spec = unanswered or count_spec(rho=QUERY_RHO, purpose="kill -9 loop")
                    with record.changed:
                        record.specs[str(spec.query_id)] = (spec, who)
                        record.pending.add(str(spec.query_id))
                    if not send(stub, spec, retry):
                        unanswered = spec
                        break
                    unanswered = None
                    if final:
                        return

    return client


def node_log(world: NodeWorld) -> Path:
    """Where every life of the node appends its log (shown when a call failed oddly)."""
    return world.root / "node.log"


def enough_answers(record: LoopRecord, wanted: int) -> bool:
    return record.answers_this_life >= wanted


def kill_at_random_moments(
    world: NodeWorld, life: NodeLife, record: LoopRecord, rng: random.Random
) -> list[float]:
    """KILLS lives: each ends by SIGKILL after a random number of answers plus a random delay.

    Returns how long each start took (process start to its ready line)."""
    start_seconds = []
    for _ in range(KILLS):
        starting = time.monotonic()
        process, port = start_node(world, log=node_log(world))
        start_seconds.append(time.monotonic() - starting)
        with record.changed:
            record.answers_this_life = 0
        life.begin(port)
        wanted = rng.randint(0, 3)
        with record.changed:
            record.changed.wait_for(partial(enough_answers, record, wanted), ANSWERS_WAIT)
        time.sleep(rng.uniform(0, 0.05))  # the random moment, often within a charge
        os.kill(process.pid, signal.SIGKILL)
        life.end()
        assert stop_and_close(process) == -signal.SIGKILL
    return start_seconds


def check_every_entry_is_fetchable(world: NodeWorld, port: int, record: LoopRecord) -> list[str]:
    """Retry every charged query_id: each must return its stored release, not charge again."""
    problems = []
    with LedgerReader.open_existing(world.node.ledger_db) as reader:
        entries = list(reader.iter_entries())
    for entry in entries:
        if entry.query_id not in record.specs:
            problems.append(f"{entry.query_id}: charged, but no client ever sent it")
            continue
        spec, who = record.specs[entry.query_id]
        with node_channel(world, port, who) as channel:
            response = node_pb2_grpc.NodeStub(channel).Query(
                query_request(spec, who), timeout=CALL_TIMEOUT
            )
        if not response.receipt.replayed:
            problems.append(f"{entry.query_id}: the retry was charged again")
        if response.release_json != entry.answer:
            problems.append(f"{entry.query_id}: the retry fetched a different release")
        if record.answers.get(entry.query_id, entry.answer) != entry.answer:
            problems.append(f"{entry.query_id}: the client received a different release")
    return problems


@pytest.mark.timeout(120 + 12 * KILLS)  # a restart takes 2-8 s on a loaded machine
def test_kill9_loop_over_concurrent_queries_loses_nothing_and_charges_nothing_undelivered(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    world = make_node_world(tmp_path, children=CHILDREN)
    configure_caps(world)
    life, record = NodeLife(), LoopRecord()
    clients = [
        threading.Thread(target=run_client(world, who, life, record), daemon=True)
        for who in (world.alice, world.bob)
        for _ in range(CLIENTS_PER_ANALYST)
    ]
    for thread in clients:
        thread.start()

    start_seconds = kill_at_random_moments(world, life, record, random.Random(SEED))
    process, port = start_node(world, log=node_log(world))
    try:
        life.begin(port, final=True)
        for thread in clients:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in clients), "a client never finished"
        fetch_problems = check_every_entry_is_fetchable(world, port, record)
    finally:
        process.send_signal(signal.SIGTERM)
        assert stop_and_close(process) == 0

    with LedgerReader.open_existing(world.node.ledger_db) as reader:
        size = reader.size()
        alice_spent = reader.spent_units(analyst="alice")
        lost = [
            query_id
            for query_id, answer in record.answers.items()
            if (entry := reader.entry_by_query_id(query_id)) is None or entry.answer != answer
        ]
        charged_refusals = [q for q in record.refused if reader.entry_by_query_id(q) is not None]
    print(
        f"\nkill -9 loop: {KILLS} kills, {len(record.specs)} queries, {record.sent} calls, "
        f"{record.retries} retries, {len(record.answers)} answered, {len(record.refused)} "
        f"refused (cap), {record.recovered} undelivered charges fetched by a retry, "
        f"{len(lost)} answers lost, {size} ledger entries, "
        f"{time.monotonic() - started:.1f} s wall, node start-up "
        f"{statistics.median(start_seconds):.2f} s median, {max(start_seconds):.2f} s max"
    )
    log_lines = node_log(world).read_text().splitlines()
    errors = [line for line in log_lines if '"level": "error"' in line]
    assert record.unexpected == [], errors
    assert record.mismatches == []
    assert record.pending == set()  # every query ended in an answer or a refusal
    assert lost == []
    assert fetch_problems == []
    assert charged_refusals == []
    assert size == len(record.answers)  # every charge was delivered, by a retry if need be
    assert record.refused  # alice's cap was reached during the loop...
    assert {record.specs[query_id][1] for query_id in record.refused} == {world.alice}
    assert alice_spent <= rho_to_units_ceil(ALICE_CAP_RHO)  # ...and never exceeded
    assert len(record.answers) >= KILLS  # the loop did charge and answer under the kills
    verified = CliRunner().invoke(cli, ["ledger", "verify", str(world.node.root)])
    assert verified.exit_code == 0, verified.output
