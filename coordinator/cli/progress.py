"""Progress of a fan-out on stderr: a rich bar and a line per node, on a terminal only.

Services take an optional `on_done(entry, result)` callback; `node_progress` yields one
that advances the bar and prints the node's line (written by the caller's `describe`).
When stderr is not a terminal nothing is shown, so piped output stays clean, and rich
(about 50 ms of imports) is not even loaded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from privacy.text import printable

if TYPE_CHECKING:
    from coordinator.partnership import NodeEntry

T = TypeVar("T")


@contextmanager
def node_progress(
    title: str, total: int, describe: Callable[[NodeEntry, T], str]
) -> Iterator[Callable[[NodeEntry, T], None]]:
    if not _may_be_a_terminal():
        yield _show_nothing
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=total)

        def done(entry: NodeEntry, result: T) -> None:
            progress.advance(task)
            if console.is_terminal:
                # A node's own words (error details) are shown as written, never as
                # markup or terminal control sequences.
                progress.console.print(printable(describe(entry, result)), markup=False)

        yield done


def _may_be_a_terminal() -> bool:
    """False only when rich would certainly find stderr not a terminal: no tty, and
    neither TTY_COMPATIBLE=1 nor FORCE_COLOR asks for one (rich's own rules)."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty())


def _show_nothing(_entry: NodeEntry, _result: object) -> None:
    """Progress off a terminal: nothing to show."""
