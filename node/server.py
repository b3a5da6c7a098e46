"""Building and running the node's gRPC server.

mTLS only (`require_client_auth=True`, no insecure port), 4 MiB messages, a bounded
thread pool and `maximum_concurrent_rpcs` (excess calls get RESOURCE_EXHAUSTED),
keepalive settings shared with clients (`npcs.transport`), the standard
`grpc.health.v1` service (SERVING, or NOT_SERVING when the ledger fails its self-check)
and server reflection, so `grpcurl` and `grpc_health_probe` work.

`running_node(root)` is the one way to run a node: it opens the node folder, runs the
ledger self-check, starts the server and stops it with a grace period on exit (in-flight
queries finish; their charges are committed before they return).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from node.engine import QueryEngine
from node.layout import NodePaths
from node.node_ledger import open_node_ledger
from node.security import load_server_credentials
from node.servicer import NodeServicer
from node.settings import NodeSettings, load_settings
from node.store import DataStore, node_schema
from npcs.transport import SERVER_OPTIONS, SERVICE_NAME
from npcs.v1 import node_pb2

log = logging.getLogger("npcs.node.server")


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port (tests); the bound port is reported by `running_node`."""
    max_workers: int = 8
    max_concurrent_rpcs: int = 32
    grace_seconds: float = 10.0
    """How long a stopping server lets in-flight calls finish."""


@dataclass(frozen=True)
class RunningNode:
    """A started node server: stop it by leaving `running_node`."""

    server: grpc.Server
    port: int
    host: str
    engine: QueryEngine
    health: health.HealthServicer
    settings: NodeSettings

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def refresh_health(self) -> bool:
        """Re-run the ledger self-check and publish the result on the health service."""
        healthy = self.engine.run_self_check()
        _publish_health(self.health, healthy)
        return healthy


def build_engine(root: Path, settings: NodeSettings, stack: ExitStack) -> QueryEngine:
    """The node's engine over its folder; the ledger is closed when `stack` closes."""
    paths = NodePaths(root)
    schema = node_schema(settings)
    ledger = open_node_ledger(root, settings)
    stack.callback(ledger.close)
    return QueryEngine(settings, paths, schema, DataStore(paths, schema), ledger)


def create_server(
    engine: QueryEngine,
    settings: NodeSettings,
    credentials: grpc.ServerCredentials,
    options: ServerOptions,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started mTLS server with the Node, health and reflection services."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=options.max_workers, thread_name_prefix="npcs-rpc"),
        handlers=[NodeServicer(engine, settings).generic_handler()],
        options=list(SERVER_OPTIONS),
        maximum_concurrent_rpcs=options.max_concurrent_rpcs,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _publish_health(health_servicer, engine.healthy)
    reflection.enable_server_reflection(
        (
            node_pb2.DESCRIPTOR.services_by_name["Node"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_secure_port(f"{options.host}:{options.port}", credentials)
    if port == 0:
        raise OSError(f"cannot listen on {options.host}:{options.port} (in use or not allowed)")
    server.start()
    return server, port, health_servicer


def _publish_health(servicer: health.HealthServicer, healthy: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if healthy
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    servicer.set("", status)
    servicer.set(SERVICE_NAME, status)


def server_credentials(paths: NodePaths) -> grpc.ServerCredentials:
    key_pem, cert_pem, ca_pem = load_server_credentials(paths)
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
    )


@contextmanager
def running_node(
    root: Path, options: ServerOptions | None = None, **overrides: Any
) -> Iterator[RunningNode]:
    """Open the node folder, serve it, and stop with a grace period on exit.

    `overrides` replace node.toml settings (e.g. in tests). Always binds `options.host`
    (default 127.0.0.1) and `options.port` (default 0: a free port).
    """
    chosen = options or ServerOptions()
    settings = load_settings(root, **overrides)
    with ExitStack() as stack:
        engine = build_engine(root, settings, stack)
        credentials = server_credentials(NodePaths(root))
        server, port, health_servicer = create_server(engine, settings, credentials, chosen)
        log.info(
            "node serving",
            extra={
                "event": "serving",
                "node": settings.name,
                "address": f"{chosen.host}:{port}",
                "healthy": engine.healthy,
            },
        )
        try:
            yield RunningNode(server, port, chosen.host, engine, health_servicer, settings)
        finally:
            health_servicer.enter_graceful_shutdown()
            server.stop(chosen.grace_seconds).wait()
            log.info("node stopped", extra={"event": "stopped", "node": settings.name})


# ---------------------------------------------------------------------------------
# Structured logs

_STANDARD_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extras.

    Callers put only public facts in extras (query ids, datasets, costs, codes), never
    data values or exception messages that could carry them.
    """

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_FIELDS and not key.startswith("_"):
                body[key] = value
        return json.dumps(body, default=str, sort_keys=False)


def configure_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> None:
    """Send the node's `npcs.*` logs to `stream` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonLinesFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logger = logging.getLogger("npcs")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
