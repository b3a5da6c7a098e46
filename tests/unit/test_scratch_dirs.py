"""Scratch folders of raw records left by a killed ingest or refresh are removed by the
next run (node/scratch_dirs.py); a running one's folder never is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from node.scratch_dirs import (
    OWNER_FILE,
    SCRATCH_PREFIX,
    UNOWNED_GRACE_SECONDS,
    new_scratch_dir,
    remove_abandoned,
)

ROOT = Path(__file__).resolve().parents[2]
_MAKE_AND_WAIT = """
import sys, time
from pathlib import Path
from node.scratch_dirs import new_scratch_dir
folder = new_scratch_dir(Path(sys.argv[1]))
(folder / "bucket.arrow").write_bytes(b"raw case records")
print(folder, flush=True)
time.sleep(600)
"""


def _owning_process(parent: Path) -> tuple[subprocess.Popen[str], Path]:
    """A real process that made a scratch folder under `parent` and is still running."""
    process = subprocess.Popen(
        [sys.executable, "-c", _MAKE_AND_WAIT, str(parent)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_a_killed_runs_folder_is_removed_by_the_next_and_a_running_ones_is_kept(
    tmp_path: Path,
) -> None:
    killed, abandoned = _owning_process(tmp_path)
    running, in_use = _owning_process(tmp_path)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()  # a kill -9: no clean-up ran
        assert abandoned.is_dir()

        mine = new_scratch_dir(tmp_path)

        assert not abandoned.exists()
        assert (in_use / "bucket.arrow").read_bytes() == b"raw case records"
        assert mine.is_dir()
        assert (mine.stat().st_mode & 0o777) == 0o700
        assert remove_abandoned(tmp_path) == []  # this process's own folder stays too
    finally:
        for process in (running, killed):
            process.kill()
            process.communicate()  # reaps it and closes its pipe


def test_a_folder_without_an_owner_is_removed_only_once_it_is_an_hour_old(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / f"{SCRATCH_PREFIX}fresh"
    old = tmp_path / f"{SCRATCH_PREFIX}old"
    for folder in (fresh, old):
        folder.mkdir(mode=0o700)
    past = time.time() - UNOWNED_GRACE_SECONDS - 60
    os.utime(old, (past, past))

    assert remove_abandoned(tmp_path) == [old]
    assert fresh.is_dir()


def test_an_owner_file_this_code_did_not_write_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / f"{SCRATCH_PREFIX}other"
    folder.mkdir()
    (folder / OWNER_FILE).write_text("not a pid", encoding="utf-8")
    assert remove_abandoned(tmp_path) == []
