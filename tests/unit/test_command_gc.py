"""`npcs` pauses the cyclic collector while a command loads, then freezes what is loaded.

Checked in fresh interpreters: freezing objects in the test process itself would keep
them from ever being collected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_AS_ENTRY_POINT = """
import gc, json, sys
from kernel.command_gc import loading_modules, modules_loaded, run_command_process
seen = {}
def entry():
    seen["loading"] = gc.isenabled()
    modules_loaded()
    seen["loaded"] = gc.isenabled()
    seen["frozen_when_loaded"] = gc.get_freeze_count() > 0
    frozen = gc.get_freeze_count()
    made_later = [[] for _ in range(1000)]
    with loading_modules():
        seen["loading_more"] = gc.isenabled()
    seen["more_loaded"] = gc.isenabled()
    seen["frozen_more"] = gc.get_freeze_count() >= frozen + len(made_later)
    raise SystemExit(3)
try:
    run_command_process(entry)
except SystemExit as exc:
    seen["exit"] = exc.code
seen["frozen_at_end"] = gc.get_freeze_count() > 0
seen["enabled_at_end"] = gc.isenabled()
print(json.dumps(seen))
"""

_CALLED_DIRECTLY = """
import gc, json
from kernel.command_gc import loading_modules, modules_loaded
modules_loaded()
with loading_modules():
    inside = gc.isenabled()
print(json.dumps({"enabled": gc.isenabled(), "inside": inside, "frozen": gc.get_freeze_count()}))
"""


def _run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_an_entry_point_loads_without_collection_then_collects_and_keeps_its_exit_code() -> None:
    assert _run(_AS_ENTRY_POINT) == {
        "loading": False,
        "loaded": True,
        "frozen_when_loaded": True,
        "loading_more": False,
        "more_loaded": True,
        "frozen_more": True,
        "exit": 3,
        "frozen_at_end": True,
        "enabled_at_end": True,
    }


def test_outside_an_entry_point_nothing_changes() -> None:
    assert _run(_CALLED_DIRECTLY) == {"enabled": True, "inside": True, "frozen": 0}
