"""The one place that imports OpenDP and enables its features.

Only "contrib" is enabled: "honest-but-curious", "floating-point" and
"idealized-numerics" weaken the guarantees and are refused by `assert_safe_features`.
"""

from __future__ import annotations

import functools
from types import ModuleType

UNSAFE_FEATURES = ("honest-but-curious", "floating-point", "idealized-numerics")


@functools.cache
def opendp() -> ModuleType:
    """Return `opendp.prelude` with the "contrib" feature enabled (imported on first use)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    assert_safe_features()
    return dp


def assert_safe_features() -> None:
    """Raise if any feature that weakens the privacy guarantee has been enabled."""
    from opendp.mod import GLOBAL_FEATURES

    enabled = sorted(set(GLOBAL_FEATURES) & set(UNSAFE_FEATURES))
    if enabled:
        raise RuntimeError(
            f"unsafe OpenDP features are enabled: {', '.join(enabled)}; "
            "the node refuses to run with them"
        )


@functools.cache
def opendp_version() -> str:
    """The installed OpenDP's version (read once: reading package metadata takes ms)."""
    from importlib.metadata import version

    return version("opendp")
