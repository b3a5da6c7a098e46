"""Issue 11, defect 3 (node side): a rollback must not re-open spent budget.

Each attack below leaves a ledger that verifies on its own (checked, so the test would
pass today's `ledger verify`), and the node must refuse it at start-up, every time: the
high-water marker beside the keys names the largest checkpoint the node ever signed.
Real node folders, a real SQLite ledger, the real `npcs-node serve` process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support_rollback import (
    charge,
    copy_ledger,
    delete_ledger,
    forge_entries,
    put_back,
    truncate_by_sql,
)

from coordinator.audit.charge_checks import check_charges
from coordinator.audit.findings import Findings
from kernel.keyfiles import load_ed25519_public_key
from node.cli import cli
from node.high_water import HighWaterFile, LedgerRolledBack
from node.layout import NodePaths
from node.node_ledger import open_node_ledger
from node.provision import init_node_folder
from privacy.ledger.genesis import is_genesis, read_reset
from privacy.ledger.reader import LedgerReader

ROUNDS = 3
"""Each attack is repeated on a fresh node this many times: detected every time."""


def _node_with_history(root: Path, size: int) -> NodePaths:
    paths = init_node_folder(root, name="node-a", partnership="p")
    with open_node_ledger(paths.root) as ledger:
        assert ledger.self_check().ok
        for number in range(size):
            charge(ledger, f"q{number}")
    return paths


def restore_older_copy(paths: NodePaths) -> None:
    """Back the ledger up, spend more, then put the backup back."""
    backup = paths.root.parent / "backup.sqlite"
    copy_ledger(paths, backup)
    with open_node_ledger(paths.root) as ledger:
        charge(ledger, "after-backup-1")
        charge(ledger, "after-backup-2")
    put_back(backup, paths)


def fork_history(paths: NodePaths) -> None:
    """Rewrite the history from an older copy with the node's own ledger key (root can
    read it) until it is longer than before: every checkpoint is validly signed."""
    backup = paths.root.parent / "backup.sqlite"
    copy_ledger(paths, backup)
    with open_node_ledger(paths.root) as ledger:
        charge(ledger, "honest-1")
        honest_size = ledger.size()
    put_back(backup, paths)
    assert forge_entries(paths, 3) > honest_size


ATTACKS: dict[str, Callable[[NodePaths], None]] = {
    "truncate-by-sql": truncate_by_sql,
    "restore-older-copy": restore_older_copy,
    "delete-ledger": delete_ledger,
    "fork": fork_history,
}
EXPECTED = {
    "truncate-by-sql": "has signed a checkpoint of size",
    "restore-older-copy": "has signed a checkpoint of size",
    "delete-ledger": "is missing",
    "fork": "history was rewritten (a fork)",
}


def _verifies_on_its_own(paths: NodePaths) -> bool:
    if not paths.ledger_db.exists():
        return True  # a fresh ledger would be created, empty and valid
    key = load_ed25519_public_key(paths.ledger_public_key)
    with LedgerReader.open_existing(paths.ledger_db) as reader:
        return reader.verify(key).ok


def _serve(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "serve", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_node_refuses_a_rolled_back_ledger_every_time(tmp_path: Path, attack: str) -> None:
    for round_number in range(ROUNDS):
        paths = _node_with_history(tmp_path / f"round-{round_number}", size=4)
        ATTACKS[attack](paths)
        assert _verifies_on_its_own(paths), "the attack must leave a self-consistent ledger"
        with pytest.raises(LedgerRolledBack) as refused:
            open_node_ledger(paths.root)
        assert EXPECTED[attack] in str(refused.value)
        assert "npcs-node ledger reset" in str(refused.value)
    result = _serve(paths.root)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "the ledger was rolled back" in result.stderr
    assert EXPECTED[attack] in result.stderr


def test_an_intact_ledger_starts_and_the_marker_follows_every_checkpoint(tmp_path: Path) -> None:
    paths = _node_with_history(tmp_path / "node", size=3)
    marker = paths.ledger_high_water.read_text()
    assert "\n3\n" in marker
    with open_node_ledger(paths.root) as ledger:
        assert ledger.self_check().ok
        charge(ledger, "one-more")
        assert ledger.latest_checkpoint().checkpoint.size == 4
    assert "\n4\n" in paths.ledger_high_water.read_text()


def test_a_running_node_turns_unhealthy_when_its_ledger_is_truncated(tmp_path: Path) -> None:
    paths = _node_with_history(tmp_path / "node", size=4)
    with open_node_ledger(paths.root) as ledger:
        assert ledger.self_check().ok
        truncate_by_sql(paths)
        report = ledger.self_check()
    assert not report.ok
    assert any("has signed a checkpoint of size 4" in problem for problem in report.problems)


def test_a_marker_not_signed_by_the_ledger_key_is_refused(tmp_path: Path) -> None:
    paths = _node_with_history(tmp_path / "node", size=2)
    text = paths.ledger_high_water.read_text()
    paths.ledger_high_water.write_text(text.replace("\n2\n", "\n1\n"))
    with pytest.raises(LedgerRolledBack, match="signature does not verify"):
        open_node_ledger(paths.root)


def _reset(root: Path, *flags: str) -> Result:
    return CliRunner().invoke(cli, ["ledger", "reset", str(root), *flags])


def test_reset_requires_the_explicit_flag_and_changes_nothing_without_it(tmp_path: Path) -> None:
    paths = _node_with_history(tmp_path / "node", size=2)
    delete_ledger(paths)
    result = _reset(paths.root)
    assert result.exit_code != 0
    assert "--i-understand-this-is-recorded" in result.output
    with pytest.raises(LedgerRolledBack):
        open_node_ledger(paths.root)


@pytest.mark.parametrize("attack", ["delete-ledger", "restore-older-copy", "fork"])
def test_reset_starts_a_recorded_ledger_that_names_the_last_checkpoint(
    tmp_path: Path, attack: str
) -> None:
    paths = _node_with_history(tmp_path / "node", size=4)
    ATTACKS[attack](paths)
    old_marker = HighWaterFile(paths.ledger_high_water).load()
    assert old_marker is not None
    signed_size = old_marker.mark.size  # the attacks may have charged more first
    result = _reset(paths.root, "--i-understand-this-is-recorded")
    assert result.exit_code == 0, result.output
    assert f"size {signed_size}," in result.output
    archived = sorted((paths.ledger_dir / "archive").glob("ledger-*.sqlite"))
    assert len(archived) == (0 if attack == "delete-ledger" else 1)

    with open_node_ledger(paths.root) as ledger:  # the node starts again
        assert ledger.self_check().ok
        (genesis,) = ledger.entries()
        charge(ledger, "after-reset")
    assert is_genesis(genesis)
    reset = read_reset(genesis)
    assert reset.previous.checkpoint.size == signed_size
    assert reset.previous.verify(load_ed25519_public_key(paths.ledger_public_key))
    assert reset.previous.checkpoint.root == old_marker.mark.root
    new_marker = HighWaterFile(paths.ledger_high_water).load()
    assert new_marker is not None
    assert new_marker.mark.size == 2

    findings = Findings()
    with LedgerReader.open_existing(paths.ledger_db) as reader:
        check_charges(reader.entries(0, 1), "node-a", findings)
    assert findings.problems == []
    (warning,) = findings.warnings
    assert "npcs-node ledger reset" in warning
    assert f"last known checkpoint had size {signed_size} " in warning
