"""Issue 11, settings problems: clear errors (never a traceback) for bad budgets, bad
environment overrides, dataset typos, a port in use and a second `serve` on one folder."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_node import NodeWorld, make_node_world

from node.cli import cli
from node.serve_lock import NodeAlreadyServingError
from node.server import running_node
from node.settings import SettingsError, load_settings

SERVE = "from node.cli import main; main()"


def node_folder(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "node.toml").write_text(f'name = "a"\npartnership = "p"\n{extra}')
    return tmp_path


@pytest.mark.parametrize(
    ("budget", "said"),
    [
        ('max_rho_per_query = "-3"', "must not be negative"),
        ('max_rho_per_query = "abc"', "not a decimal number"),
        ('max_rho_per_query = "0"', "must be positive"),
        ('total_rho_per_dataset = { incidents = "-3" }', "incidents"),
        ('analyst_caps = { alice = "abc" }', "alice"),
        ('delta = "2"', "between 0 and 1"),
    ],
)
def test_a_bad_budget_is_a_clear_settings_error(tmp_path: Path, budget: str, said: str) -> None:
    folder = node_folder(tmp_path, f"[budget]\n{budget}\n")
    with pytest.raises(SettingsError, match=said):
        load_settings(folder)
    result = CliRunner().invoke(cli, ["status", str(folder)])
    assert result.exit_code == 1
    assert "budget" in result.output
    assert "Traceback" not in result.output


def test_a_non_json_environment_override_says_lists_must_be_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = node_folder(tmp_path)
    monkeypatch.setenv("NPCS_NODE_ALLOWED_DATASETS", "incidents,reports")
    with pytest.raises(SettingsError, match="must be JSON"):
        load_settings(folder)
    result = CliRunner().invoke(cli, ["status", str(folder)])
    assert result.exit_code == 1
    assert "NPCS_NODE_ALLOWED_DATASETS" in result.output
    assert "Traceback" not in result.output


def test_a_dataset_typo_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    folder = node_folder(tmp_path, 'allowed_datasets = ["incidents", "safety-culture"]\n')
    with pytest.raises(SettingsError, match="did you mean 'safety_culture'"):
        load_settings(folder)
    typo_in_budget = node_folder(tmp_path, '[budget]\ntotal_rho_per_dataset = { reprots = "1" }\n')
    with pytest.raises(SettingsError, match="did you mean 'reports'"):
        load_settings(typo_in_budget)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> NodeWorld:
    return make_node_world(tmp_path_factory.mktemp("settings"))


def test_a_port_in_use_prints_cannot_listen_on_host_port(world: NodeWorld) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-c", SERVE, "serve", str(world.node.root), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_serve_on_the_same_folder_is_refused(world: NodeWorld) -> None:
    with running_node(world.node.root) as first:
        with (
            pytest.raises(NodeAlreadyServingError, match="already serving"),
            running_node(world.node.root),
        ):
            pass
        result = subprocess.run(
            [sys.executable, "-c", SERVE, "serve", str(world.node.root), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert first.engine.healthy
    assert result.returncode != 0
    assert "already serving" in result.stderr
    assert "Traceback" not in result.stderr
    with running_node(world.node.root) as again:  # the lock goes with the server
        assert again.engine.healthy
