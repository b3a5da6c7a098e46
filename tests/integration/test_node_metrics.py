"""The optional Prometheus endpoint of a real running node: off unless set, on loopback,
and after a real query it reports that query's rho, status and latency."""

from __future__ import annotations

import datetime
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support_node import NodeWorld, count_spec, make_node_world, node_stub, query_request

from kernel.keyfiles import load_certificate_file
from node.server import running_node
from node.settings import load_settings


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at `url`, by name and sorted labels."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_off_unless_node_toml_sets_a_port(node_world: NodeWorld) -> None:
    assert load_settings(node_world.node.root).metrics.port is None
    with running_node(node_world.node.root) as node:
        assert node.metrics is None


def test_the_endpoint_reports_a_real_querys_rho_status_and_latency(tmp_path: Path) -> None:
    world = make_node_world(tmp_path)
    with running_node(world.node.root, metrics={"port": 0}) as node:
        assert node.metrics is not None
        assert node.metrics.host == "127.0.0.1"
        before = _scrape(node.metrics.url)
        assert before[("npcs_budget_spent_rho", (("unit_kind", "child"),))] == 0
        with node_stub(world, node.port, world.alice) as stub:
            stub.Query(query_request(count_spec(rho="0.25"), world.alice), timeout=30)
            with pytest.raises(grpc.RpcError):  # over the per-query cap: refused, not charged
                stub.Query(query_request(count_spec(rho="5"), world.alice), timeout=30)
        after = _scrape(node.metrics.url)

    child = (("unit_kind", "child"),)
    assert after[("npcs_budget_spent_rho", child)] == 0.25
    assert after[("npcs_budget_remaining_rho", child)] == 9.75
    assert after[("npcs_queries_total", (("dataset", "incidents"), ("status", "OK")))] == 1
    refused = [
        value
        for (name, labels), value in after.items()
        if name == "npcs_queries_total" and ("status", "OK") not in labels
    ]
    assert refused == [1]
    assert after[("npcs_rpc_duration_seconds_count", (("method", "Query"),))] == 2
    assert after[("npcs_ledger_entries", ())] == 1
    assert after[("npcs_ledger_size_bytes", ())] > 0
    assert after[("npcs_snapshot_age_seconds", (("dataset", "incidents"),))] >= 0
    expiry = load_certificate_file(world.node.tls_cert).not_valid_after_utc
    assert after[("npcs_certificate_expiry_timestamp_seconds", ())] == expiry.timestamp()
    assert expiry > datetime.datetime.now(datetime.UTC)


def test_an_unknown_dataset_from_a_caller_is_counted_as_other(tmp_path: Path) -> None:
    """Label values come from a fixed set: a caller cannot create new series."""
    world = make_node_world(tmp_path)
    spec = count_spec()
    with running_node(world.node.root, metrics={"port": 0}) as node:
        assert node.metrics is not None
        request = query_request(spec, world.alice)
        request.query.dataset = "made-up-by-the-caller"
        with node_stub(world, node.port, world.alice) as stub, pytest.raises(grpc.RpcError):
            stub.Query(request, timeout=30)
        samples = _scrape(node.metrics.url)
    datasets = {dict(labels)["dataset"] for name, labels in samples if name == "npcs_queries_total"}
    assert datasets == {"other"}
