"""Private scratch folders for ingest and refresh, and the clean-up of abandoned ones.

Ingest's person buckets (node/ingest_buckets.py) and a refresh's spooled rows
(node/row_spool.py) hold raw case records in a folder `data/.ingest-scratch-*` (0700)
that the run removes however it ends, except when the process is killed (kill -9, a
power cut). So each folder names its owner, the process id and that process's start
time (from /proc, so a reused pid is not mistaken for the owner), and every new scratch
folder first removes the folders whose owner is gone. A folder without an owner file (an
earlier version's) is removed once it is an hour old. Folders of runs still going are
never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from kernel.files import create_exclusive
from node.permissions import make_private_dir

SCRATCH_PREFIX = ".ingest-scratch-"
OWNER_FILE = "owner"
UNOWNED_GRACE_SECONDS = 3600.0


def new_scratch_dir(parent: Path) -> Path:
    """A new private scratch folder under `parent`, owned by this process, after
    removing the abandoned ones."""
    remove_abandoned(parent)
    folder = parent / f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
    make_private_dir(folder)
    create_exclusive(folder / OWNER_FILE, _owner_text(os.getpid()).encode())
    return folder


def remove_abandoned(parent: Path) -> list[Path]:
    """Remove the scratch folders under `parent` whose owner process is gone; return them."""
    removed = []
    for folder in sorted(parent.glob(f"{SCRATCH_PREFIX}*")):
        if folder.is_dir() and _abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path) -> bool:
    try:
        owner = (folder / OWNER_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return time.time() - folder.stat().st_mtime > UNOWNED_GRACE_SECONDS
    except OSError:
        return False
    pid_text, _, _started = owner.partition(" ")
    if not pid_text.isdigit():
        return False  # not written by this code: leave it
    return owner != _owner_text(int(pid_text))


def _owner_text(pid: int) -> str:
    """'PID START' where START is the process's start time in clock ticks since boot
    ('gone' when no such process runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return f"{pid} gone"
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{pid} {fields[19]}"  # field 22 of stat: starttime (fields[0] is field 3)
