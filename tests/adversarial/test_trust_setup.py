"""Issue 11, trust set-up: credentials from another CA with the same partnership name are
refused, a ledger key is pinned for one node only, TLS refusals are named as such, and a
ledger-key mismatch in `npcs nodes` exits non-zero. Real CAs, real mTLS on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from support_node import NODE_NAME, NodeWorld, make_node_world, node_stub

from coordinator.cli import cli
from coordinator.errors import explain_rpc_error
from coordinator.partnership import PartnershipError, load_partnership
from kernel.keyfiles import generate_ed25519_key, public_key_pem, write_public_file
from node.server import RunningNode, running_node
from npcs.v1 import node_pb2 as pb
from npcs.v1 import node_pb2_grpc

PARTNERSHIP = "test-partnership"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> NodeWorld:
    return make_node_world(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="module")
def server(world: NodeWorld) -> Iterator[RunningNode]:
    with running_node(world.node.root) as node:
        yield node


def npcs(*arguments: str, config: Path | None = None) -> tuple[int, str]:
    env = {"NPCS_CONFIG": str(config)} if config else {}
    result = CliRunner(env=env).invoke(cli, list(arguments))
    return result.exit_code, result.output


def init_partnership(world: NodeWorld, config: Path) -> None:
    name = load_partnership_name(world)
    code, output = npcs(
        "partnership", "init", str(config), "--name", name, "--identity", str(world.alice.root)
    )
    assert code == 0, output


def load_partnership_name(world: NodeWorld) -> str:
    from kernel.identity import identity_from_certificate
    from kernel.keyfiles import load_certificate_file

    return identity_from_certificate(load_certificate_file(world.alice.tls_cert)).partnership


def test_init_refuses_credentials_from_another_ca_with_the_same_partnership_name(
    world: NodeWorld, tmp_path: Path
) -> None:
    name = load_partnership_name(world)
    code, output = npcs(
        "partnership",
        "init",
        str(tmp_path / "p.toml"),
        "--name",
        name,
        "--identity",
        str(world.stranger.root),  # issued by the rogue CA under the same partnership name
        "--ca",
        str(world.ca_dir / "ca.crt"),
    )
    assert code != 0
    assert "does not verify with the CA" in output or "not issued by the CA" in output
    assert not (tmp_path / "p.toml").exists()


def test_the_same_ledger_key_cannot_be_pinned_for_two_nodes(
    world: NodeWorld, tmp_path: Path
) -> None:
    config = tmp_path / "partnership.toml"
    init_partnership(world, config)
    key = str(world.node.ledger_public_key)
    code, output = npcs(
        "partnership", "add-node", str(config), "a", "127.0.0.1:1", "--ledger-key", key
    )
    assert code == 0, output
    code, output = npcs(
        "partnership", "add-node", str(config), "b", "127.0.0.1:2", "--ledger-key", key
    )
    assert code != 0
    assert "already pinned for node 'a'" in output
    text = config.read_text()
    config.write_text(text + text[text.index("[[nodes]]") :].replace('"a"', '"b"'))
    with pytest.raises(PartnershipError, match="pin the same ledger key"):
        load_partnership(config)


def rpc_error(port: int, credentials: grpc.ChannelCredentials) -> grpc.RpcError:
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Describe(pb.DescribeRequest(), timeout=30)
    return err.value


def test_a_tls_refusal_is_reported_as_tls_not_unreachable(
    world: NodeWorld, server: RunningNode
) -> None:
    alice_key, alice_cert = world.alice.tls_key.read_bytes(), world.alice.tls_cert.read_bytes()
    wrong_ca = grpc.ssl_channel_credentials(
        (world.root / "rogue-ca" / "ca.crt").read_bytes(), alice_key, alice_cert
    )
    problem = explain_rpc_error(rpc_error(server.port, wrong_ca), address="n", timeout=30)
    assert problem.code == "TLS"
    assert "not signed by your partnership's CA" in problem.reason
    assert "is it running" not in problem.reason

    with node_stub(world, server.port, world.stranger) as stub, pytest.raises(grpc.RpcError) as err:
        stub.Describe(pb.DescribeRequest(), timeout=30)
    problem = explain_rpc_error(err.value, address="n", timeout=30)
    assert problem.code == "TLS"
    assert "refused your certificate" in problem.reason

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    right_ca = grpc.ssl_channel_credentials(world.ca_pem, alice_key, alice_cert)
    problem = explain_rpc_error(rpc_error(closed_port, right_ca), address="n", timeout=30)
    assert problem.code == "UNREACHABLE"
    assert "is it running" in problem.reason


def test_npcs_nodes_exits_non_zero_on_a_ledger_key_mismatch(
    world: NodeWorld, server: RunningNode, tmp_path: Path
) -> None:
    config = tmp_path / "partnership.toml"
    init_partnership(world, config)
    other = tmp_path / "other-ledger.pub"
    write_public_file(other, public_key_pem(generate_ed25519_key().public_key()))
    code, output = npcs(
        "partnership",
        "add-node",
        str(config),
        NODE_NAME,
        server.address,
        "--ledger-key",
        str(other),
    )
    assert code == 0, output
    data = tmp_path / "data"
    result = CliRunner(env={"NPCS_CONFIG": str(config), "NPCS_DATA_DIR": str(data)}).invoke(
        cli, ["nodes"]
    )
    assert result.exit_code == 4, result.output
    assert "WARNING" in result.output
    code, output = npcs(
        "partnership",
        "add-node",
        str(config),
        NODE_NAME,
        server.address,
        "--ledger-key",
        str(world.node.ledger_public_key),
        "--replace",
    )
    assert code == 0, output
    result = CliRunner(env={"NPCS_CONFIG": str(config), "NPCS_DATA_DIR": str(data)}).invoke(
        cli, ["nodes"]
    )
    assert result.exit_code == 0, result.output
