"""The demo's `npcs-node` processes: one-shot commands, and `serve` until told to stop.

A node is ready when it prints its `listening on ADDRESS` line (a readiness check, never
a fixed sleep). Stopping is SIGTERM, then SIGKILL after a grace period; SIGTERM to the
demo itself unwinds like Ctrl-C, so the caller's `finally` stops every node it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

STOP_GRACE_SECONDS = 5.0
SERVE_GRACE_SECONDS = 2.0


class DemoError(Exception):
    """A demo step failed; the message says which and where to look."""


def node_command() -> list[str]:
    """How to run `npcs-node` from this Python (its script, or the module if not installed)."""
    script = Path(sys.executable).with_name("npcs-node")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from node.cli import main; main()"]


def append_private(path: Path) -> TextIO:
    """Open a log inside a node folder for appending, owner only (serve checks it)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "a", encoding="utf-8")


def run_node_cli(arguments: Sequence[str], log: Path) -> str:
    """Run `npcs-node ARGS`, append its output to `log`, return its stdout."""
    command = [*node_command(), *arguments]
    completed = subprocess.run(  # noqa: S603 - our own CLI, arguments built here
        command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    with append_private(log) as handle:
        handle.write(f"$ npcs-node {' '.join(arguments)}\n{completed.stdout}{completed.stderr}\n")
    if completed.returncode != 0:
        raise DemoError(
            f"`npcs-node {' '.join(arguments)}` failed (exit {completed.returncode}): "
            f"{_last_line(completed.stderr or completed.stdout)}; full output in {log}"
        )
    return completed.stdout


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class NodeProcess:
    """One `npcs-node serve` subprocess; `ready` is set when it prints its address."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.log = root / "serve.log"
        self.address: str | None = None
        self.ready = threading.Event()
        self._stop_requested = False
        (root / "serve.port").unlink(missing_ok=True)
        log_handle = append_private(self.log)
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, arguments built here
            [
                *node_command(),
                "serve",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--grace",
                str(SERVE_GRACE_SECONDS),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_handle,
            text=True,
        )
        log_handle.close()  # the child holds its own copy of the descriptor
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"npcs-demo-{name}", daemon=True
        )
        self._reader.start()

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        with append_private(self.log) as log:
            for line in stream:
                log.write(line)
                log.flush()
                if line.startswith("listening on "):
                    self.address = line.removeprefix("listening on ").strip()
                    self.ready.set()
        self.ready.set()  # EOF: the process ended; wait_ready reports how

    def wait_ready(self, timeout: float) -> str:
        if not self.ready.wait(timeout):
            raise DemoError(
                f"node {self.name} did not start within {timeout:.0f} s; see {self.log}"
            )
        if self.address is None:
            code = self.process.wait()
            raise DemoError(
                f"node {self.name} exited (code {code}) before listening: "
                f"{_last_line(self.log.read_text(encoding='utf-8'))}; see {self.log}"
            )
        return self.address

    def request_stop(self) -> None:
        """SIGTERM once: a second one would cut the node's graceful shutdown short."""
        if not self._stop_requested and self.process.poll() is None:
            self._stop_requested = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed. Returns the exit code."""
        self.request_stop()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=SERVE_GRACE_SECONDS + STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=STOP_GRACE_SECONDS)
        return self.process.returncode


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM to the demo unwinds like Ctrl-C, so the `finally` stops every node."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
