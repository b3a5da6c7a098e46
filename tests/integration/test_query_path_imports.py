"""A whole `npcs query` to a real node loads only what a query uses (issue 12).

`tests/unit/test_query_imports.py` imports the query path's modules; this runs the
command itself, in a fresh interpreter, against a node served on 127.0.0.1, so that
imports made while the query runs (reading the node's ledger key, showing the report)
are checked too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support_node import NODE_NAME, PARTNERSHIP, make_node_world
from support_query_imports import NOT_FOR_A_QUERY, PROBE_AT_EXIT

from coordinator.partnership import IdentityFiles, NodeEntry, Partnership, save_partnership
from kernel.keyfiles import load_ed25519_public_key
from node.server import running_node
from privacy.tlog import key_fingerprint

REPO = Path(__file__).resolve().parents[2]
COUNT = ["query", "count", "incidents", "--rho", "0.01", "--purpose", "imports"]


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for `npcs` with a partnership.toml naming one running node."""
    world = make_node_world(tmp_path_factory.mktemp("query-imports"), children=2_000)
    identity = IdentityFiles(
        ca_certificate=world.alice.ca_cert,
        certificate=world.alice.tls_cert,
        tls_key=world.alice.tls_key,
        signing_key=world.alice.signing_key,
    )
    with running_node(world.node.root) as running:
        fingerprint = key_fingerprint(load_ed25519_public_key(world.node.ledger_public_key))
        entry = NodeEntry(NODE_NAME, running.address, ledger_key_fingerprint=fingerprint)
        config = world.root / "partnership.toml"
        save_partnership(Partnership(PARTNERSHIP, identity, (entry,)), config)
        yield {
            **os.environ,
            "NPCS_CONFIG": str(config),
            "NPCS_DATA_DIR": str(world.root / "data"),
        }


def run_probed(arguments: list[str], env: dict[str, str]) -> dict[str, Any]:
    code = PROBE_AT_EXIT.format(unwanted=NOT_FOR_A_QUERY, arguments=arguments)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    probe: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    return probe


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_query_loads_no_module_it_does_not_use(output: str, environment: dict[str, str]) -> None:
    probe = run_probed([*COUNT, "--format", output], environment)
    assert probe["loaded"] == []
    assert probe["frozen_for_exit"]  # the exit's collections skip what the query loaded


def test_a_dry_run_loads_no_chart_module(environment: dict[str, str]) -> None:
    probe = run_probed([*COUNT, "--dry-run"], environment)
    assert probe["loaded"] == ["coordinator.preview"]  # the preview is what it shows


def test_npcs_turns_pydantic_plugin_discovery_off_unless_told_otherwise(
    environment: dict[str, str],
) -> None:
    unset = {k: v for k, v in environment.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    assert run_probed(["--version"], unset)["plugins_switch"] == "__all__"
    chosen = {**unset, "PYDANTIC_DISABLE_PLUGINS": "some_plugin"}
    assert run_probed(["--version"], chosen)["plugins_switch"] == "some_plugin"
