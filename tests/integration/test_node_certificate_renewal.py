"""A renewed node certificate, installed with `npcs-node install-cert`, is served after
a reload (SIGHUP) by the same running server: new connections get it, connections
already open keep working."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from click.testing import CliRunner
from support_node import NodeWorld, make_node_world, node_stub

from coordinator.ca import CertificateAuthority, load_csr
from kernel.identity import certificate_fingerprint
from kernel.keyfiles import certificate_pem, load_certificate
from node.cli import cli as npcs_node
from node.server import running_node
from npcs.v1 import node_pb2 as pb


def _served_fingerprint(world: NodeWorld, port: int) -> str:
    """SHA-256 of the certificate the node presents to a new TLS connection."""
    context = ssl.create_default_context(cadata=world.ca_pem.decode("ascii"))
    context.load_cert_chain(world.alice.tls_cert, world.alice.tls_key)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return certificate_fingerprint(load_certificate(ssl.DER_cert_to_PEM_cert(der).encode()))


def _renew(world: NodeWorld, tmp_path: Path) -> tuple[Path, str]:
    authority = CertificateAuthority.load(world.ca_dir)
    renewed = authority.sign_csr(load_csr(world.node.tls_csr), role="node", name="county-a")
    path = tmp_path / "renewed.crt"
    path.write_bytes(certificate_pem(renewed.certificate))
    return path, renewed.fingerprint


def test_a_renewed_certificate_is_served_after_reload_without_a_restart(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node, node_stub(world, node.port, world.alice) as open_:
        old = _served_fingerprint(world, node.port)
        open_.Describe(pb.DescribeRequest(), timeout=30)  # a connection made before renewal

        renewed_file, new = _renew(world, tmp_path)
        assert new != old
        ca_file = str(world.ca_dir / "ca.crt")
        result = CliRunner().invoke(
            npcs_node, ["install-cert", str(world.node.root), str(renewed_file), "--ca", ca_file]
        )
        assert result.exit_code == 0, result.output
        assert "systemctl reload" in result.output
        assert _served_fingerprint(world, node.port) == old  # nothing changes until reload

        node.reload()  # what SIGHUP does
        assert node.certificate is not None
        assert node.certificate.fingerprint == new
        assert _served_fingerprint(world, node.port) == new
        open_.Describe(pb.DescribeRequest(), timeout=30)  # the open connection carries on
        with node_stub(world, node.port, world.alice) as fresh:
            fresh.Describe(pb.DescribeRequest(), timeout=30)


def test_a_reload_with_a_certificate_for_another_key_keeps_the_current_one(
    tmp_path: Path,
) -> None:
    world = make_node_world(tmp_path)
    with running_node(world.node.root) as node:
        served = _served_fingerprint(world, node.port)
        # An operator copies the wrong file over keys/tls.crt (alice's, not the node's).
        world.node.tls_cert.write_bytes(world.alice.tls_cert.read_bytes())
        assert node.certificate is not None
        assert node.certificate.reload() is False
        assert _served_fingerprint(world, node.port) == served
