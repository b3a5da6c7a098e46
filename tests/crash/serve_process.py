"""A real `npcs-node serve` process for crash tests: start it, wait for its ready line,
and reap it (after SIGKILL or SIGTERM) without leaking its pipe."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from support_node import NodeWorld

READY_TIMEOUT = 60.0
SERVE = "from node.cli import main; main()"


def start_node(world: NodeWorld, log: Path | None = None) -> tuple[subprocess.Popen[str], int]:
    """Run `npcs-node serve DIR --port 0` and wait for its ready line (its log appended
    to `log`, if given)."""
    with log.open("ab") if log else open(os.devnull, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", str(world.node.root), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = process.stdout.readline()
                if line.startswith("listening on "):
                    return process, int(line.rsplit(":", 1)[1])
                if not line:
                    break
        tail = log.read_text(errors="replace")[-2000:] if log else ""
        raise AssertionError(f"node did not become ready (exit code {process.poll()})\n{tail}")
    except BaseException:
        process.kill()
        stop_and_close(process)
        raise
    finally:
        selector.close()


def stop_and_close(process: subprocess.Popen[str], timeout: float = 120) -> int:
    """Wait for the process to exit and close its stdout; its exit code."""
    code = process.wait(timeout=timeout)
    if process.stdout is not None:
        process.stdout.close()
    return code
