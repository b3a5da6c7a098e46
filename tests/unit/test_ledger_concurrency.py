"""Eight processes hammer one budget that fits k queries: exactly k are answered, also
when they charge two datasets of one privacy-unit kind (one budget for a child)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kernel.keyfiles import generate_ed25519_key, private_key_pem, write_private_file
from privacy.ledger.reader import LedgerReader

WORKER = Path(__file__).parents[1] / "crash" / "ledger_worker.py"
PROCESSES = 8
ATTEMPTS_PER_PROCESS = 12
COST = 7_000
FITS = 25


def _hammer(tmp_path: Path, datasets: tuple[str, ...]) -> None:
    """Process i charges datasets[i % len(datasets)]; all share the child's budget."""
    key_path = tmp_path / "ledger.key"
    key = generate_ed25519_key()
    write_private_file(key_path, private_key_pem(key))
    ledger_path = tmp_path / "ledger.sqlite"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(ledger_path),
                str(key_path),
                "--prefix",
                f"p{number}",
                "--count",
                str(ATTEMPTS_PER_PROCESS),
                "--cost",
                str(COST),
                "--budget",
                str(FITS * COST),
                "--analyst",
                f"analyst-{number}",
                "--dataset",
                datasets[number % len(datasets)],
                "--wait-for-go",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    for process in processes:  # all have opened the ledger before any starts charging
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "READY"
    outputs = [process.communicate("go\n", timeout=120) for process in processes]

    answered = [line for out, _ in outputs for line in out.splitlines() if line.startswith("OK")]
    refused = [
        line for out, _ in outputs for line in out.splitlines() if line.startswith("REFUSED")
    ]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert err == ""  # no SQLITE_BUSY (or anything else) escaped
        assert out.rstrip().endswith("DONE")
    assert len(answered) == FITS
    assert len(refused) == PROCESSES * ATTEMPTS_PER_PROCESS - FITS
    with LedgerReader.open_existing(ledger_path) as reader:
        assert reader.size() == FITS
        assert sum(reader.spent_units(dataset) for dataset in set(datasets)) == FITS * COST
        assert sum(entry.cost_units for entry in reader.entries()) == FITS * COST
        report = reader.verify(key.public_key())
        assert report.ok, report.problems
        answers = {entry.query_id: entry.answer.hex() for entry in reader.entries()}
    for line in answered:
        _, query_id, answer = line.split()
        assert answers[query_id] == answer


def test_concurrent_writers_get_exactly_k_answers_and_never_overspend(tmp_path: Path) -> None:
    _hammer(tmp_path, ("incidents",))


def test_concurrent_charges_on_two_child_datasets_never_exceed_the_childs_budget(
    tmp_path: Path,
) -> None:
    _hammer(tmp_path, ("incidents", "reports"))
