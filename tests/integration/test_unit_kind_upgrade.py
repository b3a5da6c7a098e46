"""A ledger written under per-dataset budgets keeps verifying after the node moves to one
budget per person (per privacy-unit kind): the entries are not rewritten, the unit kind
of each is derived from its dataset, the node's self-check passes and `npcs audit` sums
the old charges per unit kind."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from click.testing import CliRunner
from support_node import count_spec, make_node_world

from coordinator.audit.memory import open_audit_memory
from coordinator.audit.render import summary_lines
from coordinator.audit.run import audit_partnership
from coordinator.client import ClientCredentials
from coordinator.fanout import FanoutSettings, describe_node, query_node
from coordinator.partnership import NodeEntry, Partnership
from node.cli import cli as node_cli
from node.server import running_node
from privacy import tlog
from privacy.epsilon import epsilon_for_rho_units

PER_DATASET = '[budget.total_rho_per_dataset]\nincidents = "10"\nreports = "10"\n'
PER_UNIT_KIND = '[budget.total_rho_per_unit_kind]\nchild = "1"\nstaff = "1"\n'


def _budget_table(settings: Path, table: str) -> None:
    text = settings.read_text(encoding="utf-8")
    text, count = re.subn(
        r"^\[budget\.total_rho_per_\w+\]\n(?:\w+ = \"[^\"]*\"\n)*", table, text, flags=re.M
    )
    assert count == 1, "node.toml has no budget totals table"
    settings.write_text(text, encoding="utf-8")


def test_an_old_ledger_verifies_and_is_audited_per_unit_kind_after_the_upgrade(
    tmp_path: Path,
) -> None:
    world = make_node_world(tmp_path / "world", datasets=("incidents", "reports"))
    _budget_table(world.node.settings_file, PER_DATASET)  # the node before the upgrade
    alice = ClientCredentials.load(world.alice.identity_files())
    with running_node(world.node.root) as server:
        node = NodeEntry(
            name="county-a",
            address=f"127.0.0.1:{server.port}",
            ledger_key_fingerprint=tlog.key_fingerprint(world.ledger_public_key()),
        )
        for dataset in ("incidents", "incidents", "reports"):
            spec = count_spec(rho="0.125").model_copy(update={"dataset": dataset})
            assert query_node(node, alice, spec, FanoutSettings()).answer is not None

    _budget_table(world.node.settings_file, PER_UNIT_KIND)  # the upgrade
    with running_node(world.node.root) as server:  # serving runs the ledger self-check
        node = dataclasses.replace(node, address=f"127.0.0.1:{server.port}")
        partnership = Partnership(name="demo", identity=world.alice.identity_files(), nodes=(node,))
        report = audit_partnership(
            partnership,
            ClientCredentials.load(world.auditor.identity_files()),
            auditor="npcs://demo/auditor/audrey",
            memory=open_audit_memory(tmp_path / "audit.sqlite"),
        )
        description, problem = describe_node(node, alice, FanoutSettings())
        with_epsilon, _ = describe_node(node, alice, FanoutSettings(), unit_kind_epsilon=True)

    audited = report.nodes[0]
    assert report.ok, audited.problems
    child = next(row for row in audited.unit_kind_spending if row.unit_kind == "child")
    assert (child.datasets, child.charges, child.spent_rho) == (
        ("incidents", "reports"),
        3,
        "0.375",
    )
    assert child.total_rho == "1"
    assert child.spent_epsilon == epsilon_for_rho_units(375_000, "1e-9")  # OpenDP's map
    assert "child 0.375/1 (eps " in "\n".join(summary_lines(report))

    assert description is not None, problem
    budgets = {budget.unit_kind: budget for budget in description.unit_kind_budgets}
    assert budgets["child"].spent_units == 375_000
    assert budgets["child"].remaining_units == 625_000
    assert description.remaining_units["incidents"] == 625_000  # shared with reports
    assert budgets["child"].spent_epsilon == ""  # a query's Describe skips the conversion
    assert with_epsilon is not None
    (child_budget,) = (b for b in with_epsilon.unit_kind_budgets if b.unit_kind == "child")
    assert child_budget.spent_epsilon == epsilon_for_rho_units(375_000, "1e-9")
    assert child_budget.total_epsilon == epsilon_for_rho_units(1_000_000, "1e-9")
    verified = CliRunner().invoke(node_cli, ["ledger", "verify", str(world.node.root)])
    assert verified.exit_code == 0, verified.output
