"""The demo's pure parts: which jurisdictions, node.toml editing, and its questions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from coordinator.demo.processes import DemoError
from coordinator.demo.questions import QUESTIONS
from coordinator.demo.setup import ANALYST, NODE_BUDGET_RHO, configure_node, select_jurisdictions


def test_a_smaller_demo_keeps_the_largest_and_the_smallest_jurisdiction() -> None:
    chosen = select_jurisdictions(3)
    assert [j.name for j in chosen] == ["north-state", "bay-county", "river-nation"]
    assert chosen[0].children == 1_500_000
    assert chosen[-1].children == 3_000


def test_scaling_shrinks_populations_but_keeps_seeds() -> None:
    full, small = select_jurisdictions(5), select_jurisdictions(5, scale=0.1)
    assert [j.children // 10 for j in full][:4] == [j.children for j in small][:4]
    assert [j.seed for j in full] == [j.seed for j in small]


@pytest.mark.parametrize(("count", "scale"), [(0, 1.0), (6, 1.0), (3, 0.0), (3, 1.5)])
def test_impossible_sizes_are_refused(count: int, scale: float) -> None:
    with pytest.raises(DemoError):
        select_jurisdictions(count, scale)


def test_configure_node_allows_the_analyst_and_keeps_every_other_setting(tmp_path: Path) -> None:
    original = """\
name = "n1"
partnership = "demo"
allowed_analysts = []
counties = ["c001", "c002"]

[budget]
max_rho_per_query = "1"
delta = "1e-9"

[budget.total_rho_per_dataset]
incidents = "10"

[budget.analyst_caps]
"ana.b" = "2"

[child_population]
"2019" = 3000
"""
    (tmp_path / "node.toml").write_text(original)
    configure_node(tmp_path)
    settings = tomllib.loads((tmp_path / "node.toml").read_text())
    assert settings["allowed_analysts"] == [ANALYST]
    assert settings["counties"] == ["c001", "c002"]
    assert settings["child_population"] == {"2019": 3000}
    assert settings["budget"]["analyst_caps"] == {"ana.b": "2"}
    assert settings["budget"]["delta"] == "1e-9"
    assert "total_rho_per_dataset" not in settings["budget"]
    totals = settings["budget"]["total_rho_per_unit_kind"]
    assert totals == {"child": NODE_BUDGET_RHO, "staff": NODE_BUDGET_RHO}
    assert max(float(q.rho) for q in QUESTIONS) <= float(settings["budget"]["max_rho_per_query"])


def test_configure_node_keeps_the_operators_comments(tmp_path: Path) -> None:
    original = """\
# Operator's note: ask the privacy officer before raising budgets.
name = "n1"  # the jurisdiction
allowed_analysts = []

[budget]
# per query, in rho
max_rho_per_query = "1"
"""
    (tmp_path / "node.toml").write_text(original)
    configure_node(tmp_path)
    text = (tmp_path / "node.toml").read_text()
    for comment in ("# Operator's note", "# the jurisdiction", "# per query, in rho"):
        assert comment in text
    assert tomllib.loads(text)["allowed_analysts"] == [ANALYST]
