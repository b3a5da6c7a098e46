"""Issue 11, defect 5: node files are for the operator only, and analyst text cannot
act on a terminal. Real node folders, a real ledger, the real CLI."""

from __future__ import annotations

import functools
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_ledger import charge_request

from node.cli import cli
from node.node_ledger import open_node_ledger
from node.permissions import check_node_permissions, insecure_paths
from node.provision import init_node_folder
from privacy.query import PrivacyLoss, QuerySpec
from privacy.schema import PARTNERSHIP_SCHEMA
from privacy.text import printable, unsafe_character
from privacy.validate import QueryLimits, QueryValidationError, validate_query

HOSTILE_PURPOSES = [
    "[/x]",
    "[bold red]urgent[/]",
    "review \x1b[2J\x1b[31mcleared",
    "audit \u202egnp.exe",
    "line one\nline two",
    "bell\x07",
    "c1 \x9b31m",
    "isolate \u2066x\u2069",
    "mark \u200f",
]


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_init_ingest_and_ledger_create_only_private_files_under_umask_022(
    tmp_path: Path, loose_umask: None
) -> None:
    from support_node import make_node_world

    world = make_node_world(tmp_path / "world")  # init, ingest (snapshot, manifest)
    with open_node_ledger(world.node.root) as ledger:
        assert ledger.self_check().ok
        ledger.charge_and_release(
            charge_request("q1", b"{}", purpose="p"), functools.partial(bytes, b"answer")
        )
    ledger_files = sorted(p.name for p in world.node.ledger_dir.iterdir())
    assert "ledger.sqlite" in ledger_files
    assert insecure_paths(world.node.root) == []
    check_node_permissions(world.node.root)
    data_files = [p for p in world.node.data_dir.rglob("*") if p.is_file()]
    assert data_files, "the ingest wrote a snapshot"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in data_files)
    assert stat.S_IMODE(world.node.root.stat().st_mode) == 0o700


def test_the_reject_report_is_private(tmp_path: Path, loose_umask: None) -> None:
    import polars as pl

    from node.ingest import write_reject_report

    rejects = pl.DataFrame({"row": [1], "column": ["child_id"], "reason": ["raw value X"]})
    report = write_reject_report(tmp_path / "node" / "rejects", "incidents", "a", rejects)
    assert report is not None
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert stat.S_IMODE(report.parent.stat().st_mode) == 0o700


def test_serve_refuses_a_world_readable_node_folder_and_names_the_chmod(
    tmp_path: Path,
) -> None:
    root = init_node_folder(tmp_path / "node", name="node-a", partnership="p").root
    (root / "data").chmod(0o755)
    snapshot = root / "ledger" / "ledger.sqlite"
    snapshot.write_bytes(b"")
    snapshot.chmod(0o644)
    result = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "serve", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"chmod -R go-rwx {root}" in result.stderr
    assert "data is 0755" in result.stderr
    assert "ledger.sqlite is 0644" in result.stderr


@pytest.mark.parametrize("purpose", HOSTILE_PURPOSES[2:])
def test_control_and_bidi_characters_in_a_purpose_are_refused_naming_the_field(
    purpose: str,
) -> None:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic="count",
        privacy=PrivacyLoss(rho=Decimal("0.1")),
        purpose=purpose,
    )
    with pytest.raises(QueryValidationError) as caught:
        validate_query(spec, PARTNERSHIP_SCHEMA, QueryLimits(max_rho_units_per_query=10**6))
    assert caught.value.field == "purpose"
    assert "U+" in caught.value.message


def test_ordinary_text_is_safe() -> None:
    for text in (
        "Annual review: ages 0\u20133 (FY2024), \u00d1and\u00fa, \u5b50\u4f9b",
        "[/x]",
        "a\u00adb",
    ):
        assert unsafe_character(text) is None
        assert printable(text) == text


@pytest.fixture
def ledger_with_hostile_purposes(tmp_path: Path) -> Path:
    """A ledger recorded before the node refused such text (written directly)."""
    root = init_node_folder(tmp_path / "node", name="node-a", partnership="p").root
    with open_node_ledger(root) as ledger:
        assert ledger.self_check().ok
        for number, purpose in enumerate(HOSTILE_PURPOSES):
            ledger.charge_and_release(
                charge_request(f"q{number}", b"{}", purpose=purpose, cost_units=1),
                functools.partial(bytes, b"answer"),
            )
    return root


def test_ledger_show_prints_hostile_purposes_without_markup_or_control_characters(
    ledger_with_hostile_purposes: Path,
) -> None:
    result = CliRunner().invoke(cli, ["ledger", "show", str(ledger_with_hostile_purposes)])
    assert result.exit_code == 0, result.output
    assert "[/x]" in result.output
    assert "[bold red]urgent[/]" in result.output
    assert "<U+001B>" in result.output
    assert "<U+202E>" in result.output
    for character in "\x1b\x07\x9b\u202e\u2066\u200f":
        assert character not in result.output
