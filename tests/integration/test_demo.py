"""`npcs demo` end to end, as a user runs it: a real process that starts real node processes.

A small variant (3 jurisdictions, populations scaled down) keeps it quick. Node process
ids are read from the demo's progress lines ("... (pid N, log ...)"), so the tests can
prove that no node outlives the demo, after a normal run and after an interruption.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PID_PATTERN = re.compile(r"listening on \S+ \(pid (\d+),")
SMALL = ["--nodes", "3", "--scale", "0.05"]


def npcs_command() -> list[str]:
    script = Path(sys.executable).with_name("npcs")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from coordinator.cli import main; main()"]


def node_pids(progress: str) -> list[int]:
    return [int(pid) for pid in PID_PATTERN.findall(progress)]


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    # A zombie has exited; only its parent has not collected the exit code yet.
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo") / "work"
    completed = subprocess.run(
        [*npcs_command(), "demo", "--workdir", str(workdir), *SMALL],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return completed, workdir


def test_demo_succeeds_and_prints_the_showcase_tables(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, _ = demo_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    for title in (
        "Child maltreatment fatalities per year, 2019-2024",
        "Near fatalities per year",
        "per 100,000 children",
        "Partnership trend (weighted least squares, 95%)",
        "Primary cause of fatalities",
        "Share of incidents that were sleep-related",
        "Fatality reviews finding each improvement opportunity",
        "CPS recurrence of maltreatment within 12 months",
        "Racial disparity among victims",
        "1 (reference)",
        "Caseworker separations per year",
        "mean psychological safety",
        "Result: every ledger checks out",
    ):
        assert title in completed.stdout, title
    for node in ("north-state", "bay-county", "river-nation", "PARTNERSHIP"):
        assert node in completed.stdout
    # No negative count (or share, or ratio) in any table: "-12", "-0.4%", "-1.05".
    # Trend slopes (per year) can truly be negative.
    tables = [line for line in completed.stdout.splitlines() if "per year" not in line]
    negative = [line for line in tables if re.search(r"(?<![\w.])-\d", line)]
    assert not negative, negative


def test_demo_writes_a_png_chart_and_a_passing_audit_report(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, workdir = demo_run
    results = workdir / "results"
    assert (results / "incident-trend.png").read_bytes().startswith(PNG_MAGIC)
    assert (results / "racial-disparity.png").read_bytes().startswith(PNG_MAGIC)
    assert "all ledgers OK" in (results / "audit-report.md").read_text()
    audit = json.loads((results / "audit-report.json").read_text())
    assert audit["ok"] is True
    assert [node["result"] for node in audit["nodes"]] == ["OK", "OK", "OK"]
    # The final audit proves each ledger extends the baseline taken after question one.
    assert all(node["previous_size"] == 1 for node in audit["nodes"])
    assert all(node["entries"] == node["signed_requests_verified"] > 1 for node in audit["nodes"])
    assert "Child maltreatment fatalities" in (results / "tables.txt").read_text()
    assert str(results / "incident-trend.png") in completed.stdout


def test_no_node_process_survives_the_demo(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, _ = demo_run
    pids = node_pids(completed.stderr)
    assert len(pids) == 3, completed.stderr
    assert not [pid for pid in pids if is_running(pid)]
    assert completed.stderr.count("stopped (exit 0)") == 3


def test_demo_refuses_a_working_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something.txt").write_text("keep me")
    completed = subprocess.run(
        [*npcs_command(), "demo", "--workdir", str(tmp_path), *SMALL],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "not an empty folder" in completed.stderr
    assert (tmp_path / "something.txt").read_text() == "keep me"


def test_an_interrupted_demo_stops_every_node(tmp_path: Path) -> None:
    """Ctrl-C once every node is serving: the demo exits 130 and no node is left."""
    stdout = (tmp_path / "stdout.txt").open("w")
    process = subprocess.Popen(
        [*npcs_command(), "demo", "--workdir", str(tmp_path / "work"), *SMALL],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    progress = ""
    try:
        assert process.stderr is not None
        for line in process.stderr:
            progress += line
            if len(node_pids(progress)) == 3:
                break
        pids = node_pids(progress)
        assert len(pids) == 3, progress
        process.send_signal(signal.SIGINT)
        _, remaining = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stdout.close()
    assert process.returncode == 130, progress + remaining
    assert "every node was stopped" in remaining
    assert not [pid for pid in pids if is_running(pid)]
