"""The one checkpoint memory: the shrank-or-forked rule, the store analysts and auditors
share, and the auditor's import of the JSON memory of earlier versions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from coordinator.audit.memory import default_memory_path, open_audit_memory
from coordinator.checkpoints import (
    CheckpointStore,
    RememberedCheckpoint,
    ledger_regression,
)
from coordinator.errors import CheckpointStoreError
from coordinator.local_store import DATA_DIR_ENV
from coordinator.results import ResultsStore


def remember_one(store: ResultsStore, partnership: str, seen: RememberedCheckpoint) -> str | None:
    """The analyst's warning for one checkpoint, as `npcs nodes` shows it (None: kept)."""
    warnings = remember_all(store, partnership, [seen])
    return warnings[0] if warnings else None


def remember_all(
    store: ResultsStore, partnership: str, seen: list[RememberedCheckpoint]
) -> list[str]:
    return [regression.warning() for regression in store.checkpoints.remember(partnership, seen)]


def checkpoint(node: str, size: int, root: bytes, *, seen_at: str = "t") -> RememberedCheckpoint:
    return RememberedCheckpoint(node, f"{node}-ledger", size, root, b"s", "f" * 64, seen_at)


def test_results_store_notices_a_ledger_that_shrank_or_forked(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")

    def seen(size: int, root: bytes) -> RememberedCheckpoint:
        return RememberedCheckpoint("a", "a-ledger", size, root, b"s", "f" * 64, "now")

    assert remember_one(store, "p", seen(5, b"1" * 32)) is None
    assert remember_one(store, "p", seen(7, b"2" * 32)) is None
    shrank = remember_one(store, "p", seen(6, b"3" * 32))
    assert shrank is not None
    assert "shrank" in shrank
    forked = remember_one(store, "p", seen(7, b"4" * 32))
    assert forked is not None
    assert "fork" in forked
    latest = store.checkpoints.latest("p", "a")
    assert latest is not None
    assert (latest.size, latest.root) == (7, b"2" * 32)


def test_a_fan_out_remembers_every_nodes_checkpoint_at_once(tmp_path: Path) -> None:
    """One transaction for all nodes; a node that went backwards is named, the rest kept."""
    store = ResultsStore(tmp_path / "results.sqlite")

    def seen(node: str, size: int) -> RememberedCheckpoint:
        return RememberedCheckpoint(
            node, f"{node}-ledger", size, bytes([size]) * 32, b"s", "f" * 64, "t"
        )

    assert remember_all(store, "p", [seen("a", 3), seen("b", 4)]) == []
    warnings = remember_all(store, "p", [seen("a", 5), seen("b", 2)])
    assert len(warnings) == 1
    assert "node b's ledger shrank from 4 to 2" in warnings[0]
    sizes = {node: store.checkpoints.latest("p", node) for node in ("a", "b")}
    assert {node: c.size for node, c in sizes.items() if c is not None} == {"a": 5, "b": 4}


@pytest.mark.parametrize(
    ("size", "root_at_remembered_size", "expected"),
    [
        (5, b"r" * 32, None),  # same ledger
        (9, b"r" * 32, None),  # grew, and its first 5 entries are the remembered ones
        (9, None, None),  # grew; the prefix's root is not known to whoever asks
        (4, b"r" * 32, "shrank"),
        (4, None, "shrank"),
        (5, b"x" * 32, "forked"),
        (9, b"x" * 32, "forked"),
    ],
)
def test_one_rule_decides_whether_a_ledger_shrank_or_forked(
    size: int, root_at_remembered_size: bytes | None, expected: str | None
) -> None:
    remembered = checkpoint("a", 5, b"r" * 32)
    assert (
        ledger_regression(remembered, size=size, root_at_remembered_size=root_at_remembered_size)
        == expected
    )


def test_a_results_store_of_an_earlier_version_keeps_its_remembered_checkpoints(
    tmp_path: Path,
) -> None:
    """The analyst's table is unchanged, so checkpoints remembered before still count."""
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE checkpoints (partnership TEXT NOT NULL, node TEXT NOT NULL, "
            "origin TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL, "
            "signature BLOB NOT NULL, key_fingerprint TEXT NOT NULL, seen_at TEXT NOT NULL, "
            "PRIMARY KEY (partnership, node))"
        )
        connection.execute(
            "INSERT INTO checkpoints VALUES ('p', 'a', 'a-ledger', 7, ?, ?, ?, 'then')",
            (b"r" * 32, b"s", "f" * 64),
        )
    connection.close()
    store = ResultsStore(path)
    assert store.checkpoints.latest("p", "a") == checkpoint("a", 7, b"r" * 32, seen_at="then")
    shrank = remember_one(store, "p", checkpoint("a", 3, b"r" * 32))
    assert shrank is not None
    assert "shrank from 7 to 3" in shrank


def legacy_memory(path: Path, *nodes: RememberedCheckpoint) -> Path:
    """An auditor's memory in the JSON format of earlier versions."""
    body = {
        "format": "npcs.audit-checkpoints.v1",
        "partnerships": {
            "demo": {
                seen.node: {
                    "origin": seen.origin,
                    "size": seen.size,
                    "root": seen.root.hex(),
                    "signature": seen.signature.hex(),
                    "key_fingerprint": seen.key_fingerprint,
                    "seen_at": seen.seen_at,
                }
                for seen in nodes
            }
        },
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def test_the_auditors_json_memory_beside_the_default_store_is_imported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    county = checkpoint("county-a", 3, b"r" * 32, seen_at="2025-01-02T03:04:05+00:00")
    legacy = legacy_memory(tmp_path / "audit_checkpoints.json", county)
    before = legacy.read_bytes()

    store = open_audit_memory()
    assert store.path == default_memory_path() == tmp_path / "audit_checkpoints.sqlite"
    assert store.remembered("demo") == {"county-a": county}
    assert legacy.read_bytes() == before, "the JSON evidence is left as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit_checkpoints.json",
        "audit_checkpoints.sqlite",
    ]

    legacy_memory(legacy, checkpoint("county-a", 1, b"o" * 32))
    again = open_audit_memory()
    assert again.latest("demo", "county-a") == county, "imported once, never again"


def test_a_json_memory_given_as_the_store_is_refused_saying_what_to_pass(tmp_path: Path) -> None:
    legacy = legacy_memory(tmp_path / "state.json", checkpoint("county-a", 3, b"r" * 32))
    with pytest.raises(CheckpointStoreError, match=r"pass --state .*state\.sqlite"):
        open_audit_memory(legacy)
    renamed = legacy.rename(tmp_path / "state")
    with pytest.raises(CheckpointStoreError, match=r"rename it to .*state\.json and pass"):
        open_audit_memory(renamed)
    assert not (tmp_path / "state.sqlite").exists()


def test_a_damaged_memory_stops_the_audit_instead_of_starting_afresh(tmp_path: Path) -> None:
    """Losing the memory would lose the proof that ledgers only grew: say so, never replace."""
    damaged = tmp_path / "audit_checkpoints.sqlite"
    damaged.write_bytes(b"not a database at all, but long enough to be read as one" * 20)
    with pytest.raises(CheckpointStoreError, match="restore it from a backup"):
        CheckpointStore(damaged)

    legacy = tmp_path / "old" / "audit_checkpoints.json"
    legacy.parent.mkdir()
    legacy.write_text('{"format": "npcs.audit-checkpoints.v1", "partnerships": {"demo": 1}}')
    with pytest.raises(CheckpointStoreError, match="is damaged"):
        open_audit_memory(legacy.with_suffix(".sqlite"))
    legacy.write_text("{ half a file")
    with pytest.raises(CheckpointStoreError, match="not an npcs audit checkpoint file"):
        open_audit_memory(legacy.with_suffix(".sqlite"))
    assert not legacy.with_suffix(".sqlite").exists(), "no store without the old checkpoints"


def test_a_result_and_its_checkpoints_are_kept_in_one_transaction(tmp_path: Path) -> None:
    """`npcs query` stores its result and the nodes' checkpoints with one commit; a
    checkpoint that went back is returned (the remembered one is kept), the result too."""
    from support_node import count_spec
    from support_reports import answered_report

    from coordinator.results import StoredAnswer

    store = ResultsStore(tmp_path / "results.sqlite")
    assert remember_all(store, "p", [checkpoint("a", 4, b"4" * 32)]) == []
    report = answered_report(count_spec(purpose="p"), {"a": (), "b": ()})
    regressions = store.save(
        report,
        [StoredAnswer("a", b"{}", {}, True), StoredAnswer("b", b"{}", {}, True)],
        [checkpoint("a", 2, b"2" * 32), checkpoint("b", 7, b"7" * 32)],
    )
    assert [(r.node, r.regression, r.remembered_size, r.size) for r in regressions] == [
        ("a", "shrank", 4, 2)
    ]
    remembered = store.checkpoints.remembered(report.partnership)
    assert {node: c.size for node, c in remembered.items()} == {"a": 4, "b": 7}
    assert store.report(report.result_id) == report
    assert [answer.node for answer in store.answers(report.result_id)] == ["a", "b"]
