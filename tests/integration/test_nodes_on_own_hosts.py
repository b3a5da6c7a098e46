"""Nodes on hosts of their own: each `npcs-node serve` runs in its own network namespace
with its own address (10.213.0.0/24, made and removed here), with certificates from
`npcs-node init --ip` and `npcs ca sign --ip`. Covers query fan-out, the audit, a node
that goes away mid-query, and a node whose certificate lacks its address (a certificate problem,
not "unreachable").

Needs root and iproute2; skips with the reason elsewhere (CI runs as root).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support_netns import NamespaceHost, namespace_hosts, namespaces_unavailable
from support_node import (
    DEADLINE_SECONDS,
    PARTNERSHIP,
    NodeWorld,
    _configure_node,
    _load_synthetic_data,
    make_node_world,
)

from coordinator.cli import cli as npcs
from coordinator.report import Report
from node.cli import cli as npcs_node
from node.cli.serve import PORT_FILE
from node.layout import NodePaths

UNAVAILABLE = namespaces_unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))

PORT = 50051
NPCS_NODE = str(Path(sys.executable).parent / "npcs-node")


@dataclass
class HostedNode:
    name: str
    host: NamespaceHost
    paths: NodePaths
    process: subprocess.Popen[bytes]


@dataclass(frozen=True)
class Hosted:
    world: NodeWorld
    nodes: dict[str, HostedNode]
    config: Path

    def npcs(self, *args: str) -> Result:
        env = {"NPCS_CONFIG": str(self.config), "NPCS_DATA_DIR": str(self.world.root / "data")}
        return CliRunner(env=env).invoke(npcs, list(args), catch_exceptions=False)


def _ok(group: object, *args: str | Path) -> Result:
    result = CliRunner().invoke(group, [str(arg) for arg in args])  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result


def _provision(world: NodeWorld, name: str, certified_ip: str | None) -> NodePaths:
    """A node folder whose certificate names `certified_ip` (or only localhost)."""
    root = world.root / name
    ip_args = ["--ip", certified_ip] if certified_ip else []
    _ok(npcs_node, "init", root, "--name", name, "--partnership", PARTNERSHIP, *ip_args)
    paths = NodePaths(root)
    certificate = world.root / f"{name}.crt"
    _ok(npcs, "ca", "sign", world.ca_dir, paths.tls_csr, "--role", "node", "--name", name,
        "--out", certificate, *ip_args)  # fmt: skip
    _ok(npcs_node, "install-cert", root, certificate, "--ca", world.ca_dir / "ca.crt")
    _configure_node(paths, revoked="0" * 64, extra_toml="")
    _load_synthetic_data(paths, ("incidents",), 100_000)
    return paths


def _serve(stack: ExitStack, name: str, host: NamespaceHost, paths: NodePaths) -> HostedNode:
    log_file = paths.root.parent / f"{name}-serve.log"  # the node folder admits no 0644 file
    log = log_file.open("wb")
    stack.callback(log.close)
    process = subprocess.Popen(
        ["ip", "netns", "exec", host.namespace, NPCS_NODE, "serve", str(paths.root),
         "--host", host.address, "--port", str(PORT)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.callback(_stop, process)
    deadline = time.monotonic() + 4 * DEADLINE_SECONDS
    while not (paths.root / PORT_FILE).exists():  # written once the server accepts calls
        assert process.poll() is None, log_file.read_text()
        assert time.monotonic() < deadline, f"{name} did not start serving"
        time.sleep(0.05)
    return HostedNode(name, host, paths, process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    world = make_node_world(tmp_path_factory.mktemp("own-hosts"))
    config = world.root / "partnership.toml"
    _ok(npcs, "partnership", "init", config, "--name", PARTNERSHIP, "--identity", world.alice.root)
    with namespace_hosts(3) as hosts, ExitStack() as stack:
        nodes = {}
        # n0 and n1 have certificates naming their own address; n2's names only localhost.
        for index, host in enumerate(hosts):
            name = f"n{index}"
            paths = _provision(world, name, host.address if index < 2 else None)
            nodes[name] = _serve(stack, name, host, paths)
            _ok(npcs, "partnership", "add-node", config, name, f"{host.address}:{PORT}",
                "--ledger-key", paths.ledger_public_key)  # fmt: skip
        yield Hosted(world, nodes, config)


def _query(hosted: Hosted, nodes: str) -> tuple[int, Report]:
    question = ("count", "incidents", "--rho", "0.05", "--purpose", "own hosts")
    result = hosted.npcs("query", *question, "--nodes", nodes, "--format", "json")
    return result.exit_code, Report.model_validate_json(result.stdout)


def test_fan_out_reaches_nodes_at_their_own_addresses_with_verified_receipts(
    hosted: Hosted,
) -> None:
    code, report = _query(hosted, "n0,n1")
    assert code == 0
    assert [(s.node, s.answered, s.receipt) for s in report.nodes] == [
        ("n0", True, "verified"),
        ("n1", True, "verified"),
    ]


def test_the_audit_passes_over_the_namespaced_nodes(hosted: Hosted) -> None:
    _query(hosted, "n0,n1")
    result = hosted.npcs("audit", "--nodes", "n0,n1", "--identity",
                         str(hosted.world.auditor.root), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    audit = json.loads(result.stdout)
    assert audit["ok"] is True


def test_a_certificate_without_the_nodes_address_is_a_certificate_problem(
    hosted: Hosted,
) -> None:
    code, report = _query(hosted, "n0,n2")
    status = {s.node: s for s in report.nodes}
    assert code != 0
    assert status["n0"].answered
    assert status["n2"].code == "TLS"  # a certificate problem, not UNREACHABLE
    assert "does not name this address" in (status["n2"].reason or "")


def _has_established_call(host: NamespaceHost) -> bool:
    """Whether a TCP connection to the node's port is up inside its namespace."""
    listing = subprocess.run(
        ["ip", "netns", "exec", host.namespace, "ss", "-Htn", "state", "established",
         "( sport = :" + str(PORT) + " )"],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return bool(listing.stdout.strip())


def test_a_node_that_goes_away_mid_query_is_reported_while_the_others_answer(
    hosted: Hosted,
) -> None:
    """Runs last: it stops n1 for good (module order).

    n1 is frozen (SIGSTOP) so that the coordinator's call to it is surely in flight: the
    kernel completes the TCP handshake, nothing answers. Once that connection is up, n1 is
    killed (a crash or power loss mid-call); the coordinator must report n1 and still
    return n0's answer.
    """
    gone = hosted.nodes["n1"]
    gone.process.send_signal(signal.SIGSTOP)
    outcome: list[tuple[int, Report]] = []
    asking = threading.Thread(target=lambda: outcome.append(_query(hosted, "n0,n1")))
    asking.start()
    deadline = time.monotonic() + 4 * DEADLINE_SECONDS
    while not _has_established_call(gone.host):
        assert asking.is_alive(), "the query ended before its call to n1 was in flight"
        assert time.monotonic() < deadline, "no call to n1 was ever in flight"
        time.sleep(0.05)
    gone.process.kill()
    gone.process.wait(timeout=60)
    asking.join(timeout=4 * DEADLINE_SECONDS)
    assert not asking.is_alive()
    code, report = outcome[0]
    status = {s.node: s for s in report.nodes}
    assert code != 0
    assert status["n0"].answered
    assert not status["n1"].answered
    gone_codes = {"UNREACHABLE", "UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert status["n1"].code in gone_codes, status["n1"].reason
