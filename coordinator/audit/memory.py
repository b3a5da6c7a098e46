"""The auditor's remembered checkpoints: a `CheckpointStore` file of its own.

By default `audit_checkpoints.sqlite` in the npcs data directory; `npcs audit --state
FILE` names another. Earlier versions kept them in a JSON file (`audit_checkpoints.json`).
When the SQLite store does not exist yet and a JSON file of the same name does
(`X.json` beside `X.sqlite`), its checkpoints are imported once, before the store is
first used: the store is built under a temporary name and renamed into place, so a
crash never leaves a store without them. The JSON file is left as it was. A JSON file
given as the store itself is refused with a message saying what to pass instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from coordinator.checkpoints import CheckpointStore, RememberedCheckpoint
from coordinator.errors import CheckpointStoreError
from coordinator.local_store import default_data_dir
from kernel.files import fsync_directory

STATE_FILE_NAME = "audit_checkpoints.sqlite"
LEGACY_FORMAT = "npcs.audit-checkpoints.v1"
_SQLITE_HEADER = b"SQLite format 3\x00"


def default_memory_path() -> Path:
    return default_data_dir() / STATE_FILE_NAME


def open_audit_memory(path: Path | None = None) -> CheckpointStore:
    """The auditor's store at `path` (default: the data directory's), importing the
    checkpoints of an earlier JSON memory beside it when the store is new."""
    path = path or default_memory_path()
    _refuse_legacy_file(path)
    legacy = path.with_suffix(".json")
    if not path.exists() and legacy.is_file():
        _import_legacy(legacy, path)
    return CheckpointStore(path)


def _refuse_legacy_file(path: Path) -> None:
    if _legacy_checkpoints(path) is None:
        return
    store = path.with_suffix(".sqlite")
    rename = "" if path.suffix == ".json" else f"rename it to {path.with_suffix('.json')} and "
    raise CheckpointStoreError(
        f"{path} holds remembered checkpoints in the JSON format of earlier npcs versions; "
        f"npcs now keeps them in SQLite: {rename}pass --state {store} instead (it is "
        "created with the JSON file's checkpoints on first use; the JSON file stays as it is)"
    )


def _legacy_checkpoints(path: Path) -> dict[str, list[RememberedCheckpoint]] | None:
    """The checkpoints of an earlier JSON memory at `path`; None if it is not one."""
    try:
        with path.open("rb") as handle:
            if handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER:
                return None
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # not JSON: opening it as SQLite says what is wrong with it
    if not isinstance(raw, dict) or raw.get("format") != LEGACY_FORMAT:
        return None
    try:
        return {
            partnership: [_legacy_checkpoint(node, body) for node, body in nodes.items()]
            for partnership, nodes in raw["partnerships"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointStoreError(f"{path} is damaged: {exc}") from exc


def _legacy_checkpoint(node: str, raw: Mapping[str, object]) -> RememberedCheckpoint:
    return RememberedCheckpoint(
        node=node,
        origin=str(raw["origin"]),
        size=int(str(raw["size"])),
        root=bytes.fromhex(str(raw["root"])),
        signature=bytes.fromhex(str(raw["signature"])),
        key_fingerprint=str(raw["key_fingerprint"]),
        seen_at=str(raw["seen_at"]),
    )


def _import_legacy(legacy: Path, path: Path) -> None:
    checkpoints = _legacy_checkpoints(legacy)
    if checkpoints is None:
        raise CheckpointStoreError(
            f"{legacy} is not an npcs audit checkpoint file, so its checkpoints cannot be "
            f"imported into {path}: move it away, or restore it from a backup"
        )
    temporary = path.with_name(f".{path.name}.import.tmp")
    temporary.unlink(missing_ok=True)
    try:
        store = CheckpointStore(temporary)
        for partnership, remembered in checkpoints.items():
            store.remember(partnership, remembered)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)
