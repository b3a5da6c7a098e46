"""Install extras: whether one is installed, and the command that installs it.

`pip install npcs-federation` gives what an analyst or auditor needs. The node's data
stack (`node`), charts (`charts`), the one-machine demo (`demo`, both of them) and the
database drivers of `npcs-node refresh` (`sources`) are extras. A command that needs one
asks here first, without importing anything heavy, so a missing extra is a one-line error
that names the install command, not a traceback.
"""

from __future__ import annotations

import importlib.util

DISTRIBUTION = "npcs-federation"

_NODE_MODULES = ("opendp", "polars", "pyarrow", "numpy", "prometheus_client")
_CHART_MODULES = ("matplotlib",)

_SOURCES_MODULES = ("sqlalchemy", "psycopg", "pymysql", "adbc_driver_postgresql")

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "node": _NODE_MODULES,
    "charts": _CHART_MODULES,
    "demo": _NODE_MODULES + _CHART_MODULES,
    "sources": _SOURCES_MODULES,
}
"""The top-level modules each extra provides (a test checks them against pyproject.toml)."""


class MissingExtraError(Exception):
    """A command needs an install extra that this environment lacks."""


def missing_modules(extra: str) -> tuple[str, ...]:
    """The modules of `extra` that cannot be imported here (none: the extra is installed)."""
    return tuple(name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None)


def install_command(extra: str) -> str:
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def require_extra(extra: str, *, needed_by: str) -> None:
    """Raise MissingExtraError, naming what to install, unless `extra` is installed."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(
            f"{needed_by} needs {', '.join(missing)}, which this installation lacks: install "
            f"the `{extra}` extra with {install_command(extra)} "
            f'(from a source checkout: pip install ".[{extra}]")'
        )
