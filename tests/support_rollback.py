"""Shared test support: what an attacker with root on a node does to roll its ledger back.

Each step works on a stopped node's folder, straight on its files, as an insider would:
truncate the ledger by SQL (no key needed), copy it aside and put the copy back later,
delete it, or rewrite its history with the node's own ledger key (root can read it).
Used by the node's start-up refusal tests and by the clients' detection loop.
"""

from __future__ import annotations

import functools
import shutil
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support_ledger import charge_request

from kernel.keyfiles import load_ed25519_private_key
from node.layout import NodePaths
from node.node_ledger import budget_policy, ledger_origin
from node.settings import load_settings
from privacy.ledger.writer import Ledger


def charge(ledger: Ledger, query_id: str) -> None:
    """Record one charge (an unsigned test request) straight in `ledger`."""
    ledger.charge_and_release(
        charge_request(query_id, query_id.encode()), functools.partial(bytes, b"answer")
    )


def remove_ledger_files(paths: NodePaths) -> None:
    for suffix in ("", "-wal", "-shm"):
        paths.ledger_db.with_name(paths.ledger_db.name + suffix).unlink(missing_ok=True)


def copy_ledger(paths: NodePaths, target: Path) -> None:
    """A consistent copy, as an operator's backup would make (SQLite backup API)."""
    copy_ledger_file(paths.ledger_db, target)


def copy_ledger_file(ledger: Path, target: Path) -> None:
    """A consistent copy of the ledger file `ledger` (SQLite backup API)."""
    with sqlite3.connect(ledger) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    source.close()
    copy.close()


def archived_ledger(paths: NodePaths) -> Path:
    """The one ledger file `npcs-node ledger reset` archived in the node's folder."""
    (archived,) = sorted((paths.ledger_dir / "archive").glob("ledger-*.sqlite"))
    return archived


def edit_entry(ledger: Path, seq: int) -> None:
    """Change one recorded entry's purpose by SQL, as an insider editing a copy would."""
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE entries SET purpose = 'edited' WHERE seq = ?", (seq,))
    db.close()


def put_back(backup: Path, paths: NodePaths) -> None:
    """Replace the ledger by `backup`, private as the node requires (root can chmod)."""
    remove_ledger_files(paths)
    shutil.copyfile(backup, paths.ledger_db)
    paths.ledger_db.chmod(0o600)


def truncate_by_sql(paths: NodePaths) -> None:
    """Delete the last two entries and everything derived from them; no key needed."""
    with sqlite3.connect(paths.ledger_db) as db:
        (size,) = db.execute("SELECT COUNT(*) FROM entries").fetchone()
        keep = size - 2
        db.execute("DELETE FROM entries WHERE seq >= ?", (keep,))
        db.execute("DELETE FROM tree_nodes WHERE ((idx + 1) << level) > ?", (keep,))
        db.execute("DELETE FROM checkpoints WHERE size > ?", (keep,))
        db.execute("DELETE FROM spent_totals")
        for scope in ("dataset", "analyst"):
            db.execute(
                "INSERT INTO spent_totals (scope, name, units) "
                f"SELECT '{scope}', {scope}, SUM(cost_units) FROM entries GROUP BY {scope}"
            )
    db.close()


def delete_ledger(paths: NodePaths) -> None:
    remove_ledger_files(paths)


def forge_entries(paths: NodePaths, count: int) -> int:
    """Append `count` charges to the node's ledger as it is now, every checkpoint signed
    with the node's own ledger key but no high-water marker kept; the new size."""
    key = load_ed25519_private_key(paths.ledger_key, "ledger key")
    with _open_ledger(paths, paths.ledger_db, key) as forged:
        for number in range(count):
            charge(forged, f"forged-{number}")
        return forged.size()


def ledger_under_another_key(paths: NodePaths, target: Path, count: int) -> None:
    """A ledger at `target` with the node's origin and policy, `count` charges, signed
    by a key that is not the node's: an unrelated ledger dressed up as the node's."""
    with _open_ledger(paths, target, Ed25519PrivateKey.generate()) as unrelated:
        for number in range(count):
            charge(unrelated, f"unrelated-{number}")


def _open_ledger(paths: NodePaths, ledger: Path, key: Ed25519PrivateKey) -> Ledger:
    settings = load_settings(paths.root)
    return Ledger.open(
        ledger,
        origin=ledger_origin(settings),
        signing_key=key,
        policy=budget_policy(settings.budget),
        delta=settings.budget.delta,
    )


def remove_high_water_marker(paths: NodePaths) -> None:
    """What root does so that the node starts on a rolled-back ledger anyway."""
    paths.ledger_high_water.unlink(missing_ok=True)
