"""Garbage collection for a process that runs one command and exits.

CPython's cyclic collector examines every container object from time to time. In a
fresh `npcs query` (bench/bench_roundtrip.py) it spent ~15 ms examining what importing
~450 modules creates (classes, functions, pydantic schemas: all alive until exit), and
~35 ms at exit, where the interpreter runs full collections over them again before it
tears the modules down. In a process that exits after one command neither finds
garbage worth that time.

`run_command_process(entry)` runs a command-line entry point with the collector paused
while the command's modules load; `LazyGroup` calls `modules_loaded()` once it has
imported the command, which freezes everything loaded so far (`gc.freeze`: collections
skip it from then on) and turns the collector back on, so a long command still has its
own garbage cycles collected. A command that imports more modules when it runs (to keep
`--help` cheap) imports them inside `loading_modules()`, which does the same for them.
At the end every object still alive is frozen, so the collections at exit skip them
too. Nothing changes where the command is invoked some other way (tests call the click
group directly): `modules_loaded()` and `loading_modules()` then do nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_paused_for_loading = False
_in_command_process = False


def run_command_process(entry: Callable[[], object]) -> None:
    """Call `entry` (a click group's `main`, which exits) with collection as above."""
    global _paused_for_loading, _in_command_process  # process-wide, like gc's own switch
    was_enabled = gc.isenabled()
    gc.disable()
    _paused_for_loading, _in_command_process = was_enabled, True
    try:
        entry()
    finally:
        modules_loaded()  # if the command never loaded (e.g. --help): back to as it was
        gc.freeze()


def modules_loaded() -> None:
    """The command's modules are imported: never examine them again; collect from now on."""
    global _paused_for_loading  # noqa: PLW0603 - see run_command_process
    if _paused_for_loading:
        _paused_for_loading = False
        gc.freeze()
        gc.enable()


@contextmanager
def loading_modules() -> Iterator[None]:
    """Import modules inside: in a command process, without collection, frozen after."""
    if not _in_command_process:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
