"""`npcs-node status` shows the node certificate's days to expiry and warns from 30 days."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from click.testing import CliRunner
from support_node import NodeWorld

from kernel.keyfiles import load_certificate_file
from node.cli import cli
from node.layout import NodePaths
from node.status_certificate import gather_certificate_status


def _expiry(world: NodeWorld) -> datetime.datetime:
    return load_certificate_file(world.node.tls_cert).not_valid_after_utc


def test_days_to_expiry_counts_whole_days_left(node_world: NodeWorld) -> None:
    now = _expiry(node_world) - datetime.timedelta(days=45, hours=3)
    facts = gather_certificate_status(node_world.node, now)
    assert facts["days_to_expiry"] == 45
    assert facts["warning"] is None


def test_warns_from_30_days_before_expiry(node_world: NodeWorld) -> None:
    expiry = _expiry(node_world)
    assert (
        gather_certificate_status(node_world.node, expiry - datetime.timedelta(days=31))["warning"]
        is None
    )
    soon = gather_certificate_status(node_world.node, expiry - datetime.timedelta(days=29))
    assert soon["days_to_expiry"] == 29
    assert "expires in 29 days" in soon["warning"]
    assert "install-cert" in soon["warning"]


def test_an_expired_certificate_is_reported_as_expired(node_world: NodeWorld) -> None:
    facts = gather_certificate_status(node_world.node, _expiry(node_world) + datetime.timedelta(1))
    assert facts["days_to_expiry"] < 0
    assert "HAS EXPIRED" in facts["warning"]


def test_a_folder_without_certificate_says_what_to_do(tmp_path: Path) -> None:
    facts = gather_certificate_status(NodePaths(tmp_path))
    assert facts["installed"] is False
    assert "npcs-node install-cert" in facts["warning"]


def test_status_command_shows_certificate_and_ledger_size(node_world: NodeWorld) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["status", str(node_world.node.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["certificate"]["days_to_expiry"] > 30
    assert status["certificate"]["warning"] is None
    assert status["ledger"]["file_bytes"] >= 0
    text = runner.invoke(cli, ["status", str(node_world.node.root)]).output
    assert f"({status['certificate']['days_to_expiry']} days)" in text
