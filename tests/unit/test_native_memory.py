"""The node tunes the C allocator once per process (a speed setting, not a result change)."""

import platform

from node.native_memory import tune_native_allocator


def test_allocator_tuning_applies_on_glibc_and_runs_once() -> None:
    applied = tune_native_allocator()
    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert applied is on_glibc
    assert tune_native_allocator() is applied
