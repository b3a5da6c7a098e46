"""`npcs-node health` asks a real running node over mTLS and exits by what it found:
0 SERVING, 3 NOT_SERVING, 4 unreachable, 5 refused (TLS or node policy)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from support_node import NodeWorld, count_spec, make_node_world, node_stub, query_request

from coordinator.ca import CredentialPaths
from node.cli import cli
from node.cli.serve import PORT_FILE
from node.server import RunningNode, running_node


def _health(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["health", *args, "--format", "json"])
    return result.exit_code, json.loads(result.output)


def _as(who: CredentialPaths) -> list[str]:
    return ["--ca", str(who.ca_cert), "--cert", str(who.tls_cert), "--key", str(who.tls_key)]


def test_health_of_a_serving_node_exits_0_from_its_folder(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    code, body = _health(str(node_world.node.root), "--address", node_server.address)
    assert (code, body["status"]) == (0, "SERVING"), body


def test_health_finds_the_port_that_serve_wrote(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node:
        (world.node.root / PORT_FILE).write_text(f"{node.port}\n", encoding="ascii")
        code, body = _health(str(world.node.root))
    assert (code, body["address"]) == (0, node.address), body


def test_health_with_a_members_own_credentials_and_address(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    code, body = _health("--address", node_server.address, *_as(node_world.auditor))
    assert (code, body["status"]) == (0, "SERVING"), body


def test_health_of_a_node_whose_ledger_failed_exits_3(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node:
        with sqlite3.connect(world.node.ledger_db) as connection:
            connection.execute("ALTER TABLE entries RENAME TO entries_moved")
        with node_stub(world, node.port, world.alice) as stub, pytest.raises(grpc.RpcError):
            stub.Query(query_request(count_spec(), world.alice), timeout=30)
        code, body = _health(str(world.node.root), "--address", node.address)
    assert (code, body["status"]) == (3, "NOT_SERVING"), body
    assert "ledger verify" in str(body["detail"])


def test_health_of_an_address_where_nothing_listens_exits_4(node_world: NodeWorld) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, body = _health(str(node_world.node.root), "--address", f"127.0.0.1:{port}")
    assert (code, body["status"]) == (4, "UNREACHABLE"), body
    assert "is it running" in str(body["detail"])


def test_health_with_a_certificate_from_another_ca_exits_5_not_unreachable(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    code, body = _health("--address", node_server.address, *_as(node_world.stranger))
    assert (code, body["status"]) == (5, "REFUSED"), body
    assert "TLS handshake" in str(body["detail"])


def test_health_with_a_server_name_the_certificate_lacks_exits_5(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    code, body = _health(
        str(node_world.node.root),
        "--address",
        node_server.address,
        "--server-name",
        "elsewhere.example.org",
    )
    assert (code, body["status"]) == (5, "REFUSED"), body


def test_health_with_a_revoked_certificate_exits_5(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    code, body = _health("--address", node_server.address, *_as(node_world.carol))
    assert (code, body["status"]) == (5, "REFUSED"), body
    assert "revoked" in str(body["detail"])


def test_health_without_folder_or_full_credentials_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["health", "--address", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--ca" in result.output


def test_the_health_probe_loads_neither_polars_nor_opendp(
    node_world: NodeWorld, node_server: RunningNode
) -> None:
    """The probe runs as its own process, as a monitoring system starts it."""
    script = (
        "import atexit, sys\n"
        "heavy = ('polars', 'opendp', 'numpy', 'pyarrow')\n"
        "atexit.register(lambda: print('HEAVY', [m for m in heavy if m in sys.modules]))\n"
        "from node.cli import main\n"
        "main()\n"
    )
    arguments = ["health", str(node_world.node.root), "--address", node_server.address]
    completed = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SERVING" in completed.stdout
    assert "HEAVY []" in completed.stdout
