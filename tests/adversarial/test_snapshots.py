"""Issue 11, ingest: snapshots can be listed and rolled back, and a snapshot whose file no
longer matches its manifest's sha256 is never served. Real node folders and real CLI."""

from __future__ import annotations

import csv
import json
import uuid
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from support_node import make_node_world, node_stub, query_request

from node.cli import cli
from node.layout import NodePaths
from node.provision import init_node_folder
from node.server import running_node
from node.settings import load_settings
from node.snapshot_checks import SnapshotIntegrityError
from node.store import DataStore, node_schema
from privacy.query import PrivacyLoss, QuerySpec, Statistic


def workforce_csv(path: Path, workers: int) -> Path:
    fields = {
        "month": "2021-03-01",
        "role": "caseworker",
        "unit": "intake",
        "tenure_months": "12",
        "active_cases": "14",
        "new_assignments": "3",
        "separated": "false",
        "separation_type": "none",
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["worker_id", *fields])
        writer.writeheader()
        writer.writerows({"worker_id": f"w{n}", **fields} for n in range(workers))
    return path


def run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(arguments))
    return result.exit_code, result.output


@pytest.fixture
def node_with_two_snapshots(tmp_path: Path) -> Path:
    root = init_node_folder(tmp_path / "node", name="node-a", partnership="p").root
    for workers in (3, 5):
        source = workforce_csv(tmp_path / f"w{workers}.csv", workers)
        code, output = run("ingest", str(root), "workforce", str(source))
        assert code == 0, output
    return root


def snapshots(root: Path) -> list[dict[str, object]]:
    code, output = run("snapshots", "list", str(root), "workforce", "--format", "json")
    assert code == 0, output
    listed: list[dict[str, object]] = json.loads(output)["snapshots"]
    return listed


def test_list_shows_every_snapshot_and_rollback_makes_the_previous_one_current(
    node_with_two_snapshots: Path,
) -> None:
    root = node_with_two_snapshots
    before = snapshots(root)
    assert [(s["rows"], s["current"]) for s in before] == [(3, False), (5, True)]
    code, output = run("snapshots", "list", str(root))
    assert code == 0
    assert "* workforce" in output
    code, output = run("snapshots", "rollback", str(root), "workforce")
    assert code == 0, output
    assert "Spent privacy budget is unchanged" in output
    assert [(s["rows"], s["current"]) for s in snapshots(root)] == [(3, True), (5, False)]
    code, output = run("snapshots", "rollback", str(root), "workforce")
    assert code == 1
    assert "no snapshot older than the current one" in output
    code, output = run(
        "snapshots", "rollback", str(root), "workforce", "--to", str(before[1]["id"])
    )
    assert code == 0, output
    code, output = run("snapshots", "rollback", str(root), "workforce", "--to", "nope")
    assert code == 1
    assert "has no snapshot 'nope'" in output


def test_a_changed_snapshot_file_is_refused_and_cannot_be_rolled_back_to(
    node_with_two_snapshots: Path,
) -> None:
    root = node_with_two_snapshots
    store = DataStore(NodePaths(root), node_schema(load_settings(root)))
    current = store.verified_current("workforce")
    assert current is not None
    older = snapshots(root)[0]
    older_path = current.path.with_name(f"{older['id']}.parquet")
    older_path.write_bytes(older_path.read_bytes() + b"\0")
    code, output = run("snapshots", "rollback", str(root), "workforce")
    assert code == 1
    assert "does not match the sha256 in its manifest" in output
    assert snapshots(root)[1]["current"] is True
    current.path.write_bytes(current.path.read_bytes()[:-1] + b"\1")
    with pytest.raises(SnapshotIntegrityError):
        DataStore(NodePaths(root), store.schema).verified_current("workforce")


def test_a_node_does_not_answer_from_a_snapshot_changed_on_disk(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    store = DataStore(world.node, node_schema(load_settings(world.node.root)))
    snapshot = store.current("incidents")
    assert snapshot is not None
    data = bytearray(snapshot.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.path.write_bytes(bytes(data))
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="integrity",
    )
    with (
        running_node(world.node.root) as node,
        node_stub(world, node.port, world.alice) as stub,
        pytest.raises(grpc.RpcError) as err,
    ):
        stub.Query(query_request(spec, world.alice), timeout=60)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert "integrity check" in (err.value.details() or "")
