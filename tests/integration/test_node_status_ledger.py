"""`npcs-node status` shows the remaining budget and the last signed checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from support_node import NodeWorld, count_spec, make_node_world, node_stub, query_request

from node.cli import cli
from node.server import running_node


def test_status_shows_spent_budget_and_last_checkpoint(tmp_path: Path) -> None:
    world: NodeWorld = make_node_world(tmp_path)
    with running_node(world.node.root) as node, node_stub(world, node.port, world.alice) as stub:
        stub.Query(query_request(count_spec(rho="0.25"), world.alice), timeout=30)
    runner = CliRunner()
    result = runner.invoke(cli, ["status", str(world.node.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    ledger = json.loads(result.output)["ledger"]
    child = ledger["budget"]["child"]
    assert child["datasets"] == ["incidents", "reports"]
    assert (child["total_rho"], child["spent_rho"], child["remaining_rho"]) == (
        "10",
        "0.25",
        "9.75",
    )
    assert float(child["spent_epsilon"]) > 0.25  # epsilon at delta 1e-9 of rho 0.25
    assert ledger["checkpoint"]["size"] == 1
    # hex, as `npcs-node ledger verify` and `npcs audit` print roots
    assert re.fullmatch(r"[0-9a-f]{64}", ledger["checkpoint"]["root"])
    text = runner.invoke(cli, ["status", str(world.node.root)]).output
    assert "child (incidents, reports): 10 / 0.25 / 9.75" in text
    assert "last checkpoint: 1 entries" in text
