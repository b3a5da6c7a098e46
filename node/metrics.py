"""The node's optional Prometheus endpoint (node.toml `[metrics] port = ...`).

Two kinds of metric:
- counted while serving: `npcs_queries_total{dataset,status}` (status is the gRPC code
  name) and `npcs_rpc_duration_seconds{method}` (a latency histogram per Node rpc);
- read from the node folder at each scrape, so they are right after a restart and never
  drift from what `npcs-node status` shows: `npcs_budget_spent_rho{unit_kind}`,
  `npcs_budget_remaining_rho{unit_kind}`, `npcs_ledger_entries`, `npcs_ledger_size_bytes`,
  `npcs_snapshot_age_seconds{dataset}`, `npcs_certificate_expiry_timestamp_seconds`.

Labels take values from small fixed sets only: dataset names of the partnership schema
(anything else an analyst sends is counted as "other"), gRPC code names and the Node
service's rpc names. Never a caller's name or a query's text. The endpoint is plain HTTP
bound to 127.0.0.1 unless node.toml says otherwise.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kernel.keyfiles import KeyFileError, load_certificate_file
from node.layout import NodePaths
from node.settings import NodeSettings
from node.status_ledger import gather_ledger_status
from node.store import DataStore, StoreError, node_schema

log = logging.getLogger("npcs.node.metrics")

OTHER_DATASET = "other"
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class NodeMetrics:
    """The node's metrics in their own registry (several nodes may run in one process)."""

    def __init__(self, root: Path, settings: NodeSettings) -> None:
        self.registry = CollectorRegistry()
        self._datasets = frozenset(node_schema(settings).dataset_names)
        self._queries = Counter(
            "npcs_queries",
            "Query calls answered or refused, by dataset and gRPC status code.",
            ["dataset", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "npcs_rpc_duration_seconds",
            "Time to handle each Node rpc, from arrival to answer or refusal.",
            ["method"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.registry.register(NodeStateCollector(root, settings))

    def observe_rpc(self, method: str, status: str, seconds: float, dataset: str | None) -> None:
        """Count one finished rpc (`dataset` as the caller sent it, for Query calls)."""
        self._latency.labels(method=method).observe(seconds)
        if method == "Query":
            known = dataset if dataset in self._datasets else OTHER_DATASET
            self._queries.labels(dataset=known, status=status).inc()


class NodeStateCollector(Collector):
    """Budget, ledger, snapshots and certificate, read from the node folder per scrape."""

    def __init__(self, root: Path, settings: NodeSettings) -> None:
        self._root = root
        self._settings = settings
        self._paths = NodePaths(root)

    def collect(self) -> Iterable[Metric]:
        now = datetime.datetime.now(datetime.UTC)
        yield from self._ledger_metrics()
        yield self._snapshot_ages(now)
        expiry = self._certificate_expiry()
        if expiry is not None:
            yield expiry

    def _ledger_metrics(self) -> Iterator[Metric]:
        status = gather_ledger_status(self._root, self._settings)
        if "error" in status:
            log.warning("metrics: ledger unreadable", extra={"event": "metrics_ledger_error"})
            return
        spent = GaugeMetricFamily(
            "npcs_budget_spent_rho",
            "Privacy budget spent per privacy-unit kind (zCDP rho).",
            labels=["unit_kind"],
        )
        remaining = GaugeMetricFamily(
            "npcs_budget_remaining_rho",
            "Privacy budget left per privacy-unit kind (zCDP rho).",
            labels=["unit_kind"],
        )
        for kind, facts in status["budget"].items():
            spent.add_metric([kind], float(Decimal(facts["spent_rho"])))
            remaining.add_metric([kind], float(Decimal(facts["remaining_rho"])))
        entries = GaugeMetricFamily("npcs_ledger_entries", "Entries in the node's privacy ledger.")
        checkpoint = status["checkpoint"]
        entries.add_metric([], checkpoint["size"] if checkpoint else 0)
        size = GaugeMetricFamily("npcs_ledger_size_bytes", "Size of the ledger database file.")
        size.add_metric([], status["file_bytes"])
        yield from (spent, remaining, entries, size)

    def _snapshot_ages(self, now: datetime.datetime) -> Metric:
        ages = GaugeMetricFamily(
            "npcs_snapshot_age_seconds",
            "Time since each dataset's current snapshot was created.",
            labels=["dataset"],
        )
        schema = node_schema(self._settings)
        store = DataStore(self._paths, schema)
        for dataset in schema.dataset_names:
            try:
                snapshot = store.current(dataset)
            except StoreError:
                continue
            if snapshot is not None:
                created = datetime.datetime.fromisoformat(snapshot.created_at)
                ages.add_metric([dataset], (now - created).total_seconds())
        return ages

    def _certificate_expiry(self) -> Metric | None:
        try:
            certificate = load_certificate_file(self._paths.tls_cert, "node certificate")
        except KeyFileError:
            return None
        expiry = GaugeMetricFamily(
            "npcs_certificate_expiry_timestamp_seconds",
            "When the node's TLS certificate expires (Unix time).",
        )
        expiry.add_metric([], certificate.not_valid_after_utc.timestamp())
        return expiry


@dataclass(frozen=True)
class MetricsEndpoint:
    metrics: NodeMetrics
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"


@contextmanager
def serving_metrics(root: Path, settings: NodeSettings) -> Iterator[MetricsEndpoint | None]:
    """Serve /metrics while inside, if node.toml's `[metrics] port` is set; else yield None."""
    chosen = settings.metrics
    if chosen.port is None:
        yield None
        return
    metrics = NodeMetrics(root, settings)
    try:
        server, thread = start_http_server(chosen.port, addr=chosen.host, registry=metrics.registry)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {chosen.host}:{chosen.port} ({exc.strerror}); choose "
            "another [metrics] port in node.toml"
        ) from exc
    try:
        log.info(
            "metrics serving",
            extra={"event": "metrics_serving", "address": f"{chosen.host}:{server.server_port}"},
        )
        yield MetricsEndpoint(metrics, chosen.host, server.server_port)
    finally:
        _stop(server, thread)


def _stop(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join()
