"""kill -9 a process that is releasing answers, at random moments, over and over.

Every answer the process printed (it prints only after `charge_and_release` returned)
must be in the ledger, byte-identical; the ledger must pass its self-check and
`npcs-node ledger verify`. The same harness, run against a deliberately broken worker
that releases before it commits, must catch the lost charge.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kernel.keyfiles import (
    generate_ed25519_key,
    load_ed25519_public_key,
    private_key_pem,
    public_key_pem,
    write_private_file,
    write_public_file,
)
from node.cli import cli
from node.layout import NodePaths
from privacy.ledger.reader import LedgerReader

pytestmark = pytest.mark.crash

WORKER = Path(__file__).with_name("ledger_worker.py")
KILLS = 100


@dataclass
class HarnessResult:
    released: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def make_node_dir(root: Path) -> NodePaths:
    paths = NodePaths(root)
    for folder in (root, paths.keys_dir, paths.ledger_dir):
        folder.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text('name = "node-a"\npartnership = "test"\n')
    key = generate_ed25519_key()
    write_private_file(paths.ledger_key, private_key_pem(key))
    write_public_file(paths.ledger_public_key, public_key_pem(key.public_key()))
    return paths


def start_worker(paths: NodePaths, prefix: str, *, broken: bool) -> subprocess.Popen[str]:
    command = [
        sys.executable, str(WORKER), str(paths.ledger_db), str(paths.ledger_key),
        "--prefix", prefix, "--cost", "1000", "--wait-for-go",
    ]  # fmt: skip
    if broken:
        command.append("--release-before-commit")
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )


def read_line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline()


def record(line: str, released: dict[str, bytes]) -> None:
    parts = line.split()
    if len(parts) == 3 and parts[0] == "OK":
        released[parts[1]] = bytes.fromhex(parts[2])


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def run_harness(
    paths: NodePaths,
    kills: int,
    workers: list[subprocess.Popen[str]],
    *,
    broken: bool = False,
    seed: int = 20240,
) -> HarnessResult:
    """Start a worker, let it release answers, kill -9 it at a random moment; repeat.

    The next worker is started (and has opened the ledger) while the current one runs,
    so the loop is bounded by the kills, not by interpreter start-up.
    """
    rng = random.Random(seed)
    result = HarnessResult()
    public_key = load_ed25519_public_key(paths.ledger_public_key)
    upcoming = start_worker(paths, "run0", broken=broken)
    workers.append(upcoming)
    for run in range(kills):
        process = upcoming
        assert read_line(process.stdout).strip() == "READY"
        upcoming = start_worker(paths, f"run{run + 1}", broken=broken)
        workers.append(upcoming)
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
        answers_before_kill = rng.randint(0, 3) if not broken else 1
        for _ in range(answers_before_kill):
            line = read_line(process.stdout)
            assert line, "the worker died on its own"
            record(line, result.released)
        if not broken:
            time.sleep(rng.uniform(0, 0.004))  # the random moment within a charge
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.stdout is not None
        for line in process.stdout.read().splitlines():  # printed before it died
            record(line, result.released)
        check_ledger(paths, public_key, result)
    upcoming.kill()
    upcoming.wait()
    return result


def check_ledger(paths: NodePaths, public_key: Ed25519PublicKey, result: HarnessResult) -> None:
    with LedgerReader.open_existing(paths.ledger_db) as reader:
        for query_id, answer in result.released.items():
            entry = reader.entry_by_query_id(query_id)
            lost = entry is None or entry.answer != answer
            if lost and query_id not in result.missing:
                result.missing.append(query_id)
        report = reader.verify(public_key, all_signatures=False)  # the CLI checks all at the end
        if not report.ok:
            result.problems.extend(report.problems)


def test_every_returned_answer_survives_kill_9_and_the_ledger_verifies(
    tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    paths = make_node_dir(tmp_path / "node")
    result = run_harness(paths, KILLS, workers)
    assert result.missing == []
    assert result.problems == []
    assert len(result.released) >= KILLS  # the loop did release answers to check
    verified = CliRunner().invoke(cli, ["ledger", "verify", str(paths.root)])
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("ledger OK:")
    with LedgerReader.open_existing(paths.ledger_db) as reader:
        assert reader.spent_units("incidents") == 1000 * reader.size()


def test_the_harness_catches_a_worker_that_releases_before_committing(
    tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    paths = make_node_dir(tmp_path / "node")
    result = run_harness(paths, 3, workers, broken=True)
    assert len(result.missing) == 3  # every kill lost a released answer
    assert result.problems == []  # the ledger itself stays sound: it just never saw them
