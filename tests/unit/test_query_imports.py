"""`npcs query` loads only what a query uses (issue 12): checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support_query_imports import NOT_FOR_A_QUERY

REPO = Path(__file__).resolve().parents[2]

QUERY_PATH = (
    "coordinator.cli",
    "coordinator.cli.query",
    "coordinator.cli.progress",
    "coordinator.cli.query_args",
    "coordinator.session",
    "coordinator.querying",
    "coordinator.cli.render",
)
"""Every module `npcs query` (without --plot or --dry-run) imports before it asks a node."""

_PROBE = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(name for name in {unwanted!r} if name in sys.modules)))
"""


def test_the_query_command_path_loads_no_module_a_query_does_not_use() -> None:
    code = _PROBE.format(modules=QUERY_PATH, unwanted=NOT_FOR_A_QUERY)
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []


_PROGRESS = """
import sys
from coordinator.cli.progress import node_progress
with node_progress("nodes", 1, lambda entry, result: "node n1 answered") as done:
    done(None, None)
print("rich" in sys.modules)
"""


def test_progress_off_a_terminal_shows_nothing_and_loads_no_rich() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    piped = subprocess.run(
        [sys.executable, "-c", _PROGRESS],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == "False"
    assert piped.stderr == ""
    # Asked for a terminal (FORCE_COLOR, as rich honours it): the per-node line is shown.
    forced = subprocess.run(
        [sys.executable, "-c", _PROGRESS],
        capture_output=True,
        text=True,
        env={**env, "FORCE_COLOR": "1"},
        cwd=REPO,
        check=False,
    )
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == "True"
    assert "node n1 answered" in forced.stderr
