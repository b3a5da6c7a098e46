"""What `npcs query` must not load (issue 12): shared by the import and end-to-end checks."""

from __future__ import annotations

NOT_FOR_A_QUERY = (
    "tomlkit",  # writing TOML: partnership and CA setup only
    "cryptography.x509",  # certificates are parsed by gRPC's TLS, never by a query (~40 ms)
    # every key format cryptography knows (~8 ms): a query reads Ed25519 keys only
    # (kernel/ed25519_pem.py)
    "cryptography.hazmat.primitives.serialization",
    "difflib",  # did-you-mean: only for a mistyped name
    "polars",
    "opendp",
    "pyarrow",
    "numpy",
    "matplotlib",
    "sqlalchemy",
    "coordinator.charts",  # --plot only
    "coordinator.preview",  # --dry-run only
    "coordinator.demo",
    "coordinator.ca",
    "coordinator.audit",
)

PROBE_AT_EXIT = """
import atexit, gc, json, os, sys
def _report():
    print(json.dumps({{
        "loaded": sorted(name for name in {unwanted!r} if name in sys.modules),
        "plugins_switch": os.environ.get("PYDANTIC_DISABLE_PLUGINS"),
        "frozen_for_exit": gc.get_freeze_count() > 0,
    }}), file=sys.stderr)
atexit.register(_report)
sys.argv = ["npcs", *{arguments!r}]
from coordinator.cli import main
main()
"""
"""Run `npcs ARGUMENTS` in this interpreter, then print (on stderr, as the last line)
which of `unwanted` it loaded, the pydantic plugins switch it ran with, and whether the
objects alive at exit were frozen for the interpreter's exit (kernel/command_gc.py)."""
