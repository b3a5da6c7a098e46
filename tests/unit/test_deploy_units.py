"""The systemd units under deploy/ run real commands with the hardening the guide promises."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from click.testing import CliRunner

from node.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return parser


def test_the_refresh_service_runs_npcs_node_refresh_once_as_a_dedicated_user() -> None:
    service = unit("npcs-node-refresh.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] == "npcs"
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "npcs-node"
    result = CliRunner().invoke(cli, [*argv[1:2], "--help"])
    assert result.exit_code == 0, result.output
    assert "--format" in argv


def test_the_refresh_service_may_write_only_the_node_folder() -> None:
    service = unit("npcs-node-refresh.service")["Service"]
    node_folder = shlex.split(service["ExecStart"])[2]
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == node_folder
    assert service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""


def test_the_timer_starts_the_refresh_service_and_catches_up_missed_runs() -> None:
    timer = unit("npcs-node-refresh.timer")
    assert timer["Timer"]["Unit"] == "npcs-node-refresh.service"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_the_serve_service_runs_npcs_node_serve_as_the_same_user_on_the_same_folder() -> None:
    service = unit("npcs-node.service")["Service"]
    refresh = unit("npcs-node-refresh.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "npcs-node"
    assert argv[1] == "serve"
    assert CliRunner().invoke(cli, ["serve", "--help"]).exit_code == 0
    assert (service["User"], argv[2]) == (refresh["User"], shlex.split(refresh["ExecStart"])[2])


def test_the_serve_service_is_hardened_restarts_on_failure_and_reloads_on_sighup() -> None:
    service = unit("npcs-node.service")["Service"]
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == shlex.split(service["ExecStart"])[2]
    assert service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
