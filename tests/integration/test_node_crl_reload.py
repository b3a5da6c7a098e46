"""A CA revocation reaches a running node through its CRL file, with no restart.

The CA revokes with `npcs ca revoke` (a signed X.509 CRL); the node re-reads the file
named by `crl_file` when it changes, or at once on `RunningNode.reload()` (SIGHUP).
"""

from __future__ import annotations

import datetime
import os
import shutil
import time
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from support_node import NodeWorld, make_node_world, node_stub

from coordinator.ca_registry import crl_path, load_registry, publish_crl, record_issued
from coordinator.cli import cli as npcs
from kernel.keyfiles import load_certificate_file
from node.revocation_list import RevocationListError
from node.server import running_node
from npcs.v1 import node_pb2 as pb

CRL_IN_NODE = "crl.pem"
REFUSAL_DEADLINE_SECONDS = 1.0
"""Issue 13: refused within one second of the CRL file changing."""


def _world_with_published_crl(tmp_path: Path) -> NodeWorld:
    world = make_node_world(tmp_path)
    record_issued(world.ca_dir, load_certificate_file(world.alice.tls_cert))
    publish_crl(world.ca_dir, load_registry(world.ca_dir), datetime.datetime.now(datetime.UTC))
    _deliver_crl(world)
    return world


def _deliver_crl(world: NodeWorld) -> None:
    """Copy the CA's crl.pem into the node folder the way IT should: whole, then rename."""
    staged = world.node.root / "crl.pem.new"
    shutil.copyfile(crl_path(world.ca_dir), staged)
    staged.chmod(0o600)  # like every file in the node folder
    os.replace(staged, world.node.root / CRL_IN_NODE)


def _describe_code(world: NodeWorld, port: int) -> grpc.StatusCode:
    with node_stub(world, port, world.alice) as stub:
        try:
            stub.Describe(pb.DescribeRequest(), timeout=30)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_a_revoked_analyst_is_refused_within_a_second_of_the_crl_changing(
    tmp_path: Path,
) -> None:
    world = _world_with_published_crl(tmp_path)
    with running_node(world.node.root, crl_file=CRL_IN_NODE) as node:
        assert _describe_code(world, node.port) == grpc.StatusCode.OK

        result = CliRunner().invoke(
            npcs, ["ca", "revoke", str(world.ca_dir), str(world.alice.tls_cert)]
        )
        assert result.exit_code == 0, result.output
        assert "Revoked npcs://demo/analyst/alice" in result.output
        _deliver_crl(world)
        changed = time.monotonic()
        while (code := _describe_code(world, node.port)) == grpc.StatusCode.OK:
            assert time.monotonic() - changed < REFUSAL_DEADLINE_SECONDS, "still admitted"
        assert code == grpc.StatusCode.PERMISSION_DENIED
        # The same server, never restarted, keeps refusing alice.
        assert _describe_code(world, node.port) == grpc.StatusCode.PERMISSION_DENIED


def test_a_crl_not_signed_by_the_partnership_ca_is_ignored_and_the_old_one_stays(
    tmp_path: Path,
) -> None:
    world = _world_with_published_crl(tmp_path)
    CliRunner().invoke(npcs, ["ca", "revoke", str(world.ca_dir), str(world.alice.tls_cert)])
    _deliver_crl(world)
    rogue_ca = world.root / "rogue-ca"
    publish_crl(rogue_ca, load_registry(rogue_ca), datetime.datetime.now(datetime.UTC))
    with running_node(world.node.root, crl_file=CRL_IN_NODE) as node:
        assert node.revocations is not None
        assert _describe_code(world, node.port) == grpc.StatusCode.PERMISSION_DENIED
        shutil.copyfile(crl_path(rogue_ca), world.node.root / CRL_IN_NODE)  # empty, forged
        assert node.revocations.reload() is False  # what SIGHUP does
        assert _describe_code(world, node.port) == grpc.StatusCode.PERMISSION_DENIED


def test_sighup_reload_applies_a_new_crl_at_once(tmp_path: Path) -> None:
    world = _world_with_published_crl(tmp_path)
    with running_node(world.node.root, crl_file=CRL_IN_NODE) as node:
        CliRunner().invoke(npcs, ["ca", "revoke", str(world.ca_dir), str(world.alice.tls_cert)])
        _deliver_crl(world)
        node.reload()
        assert _describe_code(world, node.port) == grpc.StatusCode.PERMISSION_DENIED


def test_a_configured_crl_that_is_missing_stops_the_node_from_starting(
    node_world: NodeWorld,
) -> None:
    with (
        pytest.raises(RevocationListError, match="cannot read the revocation list"),
        running_node(node_world.node.root, crl_file="no-such-crl.pem"),
    ):
        pass
