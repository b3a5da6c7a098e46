"""Building and running the node's gRPC server.

mTLS only (`require_client_auth=True`, no insecure port), 4 MiB messages, a bounded
thread pool and `maximum_concurrent_rpcs` (excess calls get RESOURCE_EXHAUSTED; both,
and the shutdown grace period, from node.toml's `[server]`), keepalive settings shared
with clients (`npcs.transport`), the standard `grpc.health.v1` service (SERVING, or
NOT_SERVING once the ledger fails its start-up check or its background re-verification,
or faults while serving) and
server reflection, so `grpcurl` and `grpc_health_probe` work. Revoked certificates are
refused on every service, health and reflection included (`RevocationInterceptor`).

`running_node(root)` is the one way to run a node: it opens the node folder, runs the
ledger's start-up check (the full re-verification goes on in the background), starts the
server and stops it with a grace period on exit (in-flight
queries finish; their charges are committed before they return).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from node.engine import QueryEngine
from node.layout import NodePaths
from node.metrics import MetricsEndpoint, serving_metrics
from node.native_memory import tune_native_allocator
from node.node_ledger import open_node_ledger
from node.revocation_list import RevocationList, watching
from node.security import (
    AccessDeniedError,
    load_revocation_list,
    refuse_if_listed,
    unrevoked_peer,
)
from node.serve_lock import exclusive_serve_lock
from node.servicer import NodeServicer, RpcObserver
from node.serving_certificate import ServingCertificate
from node.settings import NodeSettings, load_settings
from node.store import DataStore, node_schema
from npcs.transport import SERVER_OPTIONS, SERVICE_NAME
from npcs.v1 import node_pb2

log = logging.getLogger("npcs.node.server")

if TYPE_CHECKING:  # generic only in the type stubs
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor


@dataclass(frozen=True)
class ServerOptions:
    """Where to listen, and the server's limits; a limit left None comes from node.toml's
    `[server]` table (`NodeSettings.server`)."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port (tests); the bound port is reported by `running_node`."""
    max_workers: int | None = None
    max_concurrent_rpcs: int | None = None
    grace_seconds: float | None = None
    """How long a stopping server lets in-flight calls finish."""

    def with_limits_from(self, settings: NodeSettings) -> ServerOptions:
        """These options with every unset limit taken from the node's settings."""
        limits = settings.server
        return replace(
            self,
            max_workers=_chosen(self.max_workers, limits.max_workers),
            max_concurrent_rpcs=_chosen(self.max_concurrent_rpcs, limits.max_concurrent_rpcs),
            grace_seconds=_chosen(self.grace_seconds, limits.grace_seconds),
        )


_T = TypeVar("_T")


def _chosen(explicit: _T | None, configured: _T) -> _T:
    return configured if explicit is None else explicit


@dataclass(frozen=True)
class RunningNode:
    """A started node server: stop it by leaving `running_node`."""

    server: grpc.Server
    port: int
    host: str
    engine: QueryEngine
    health: health.HealthServicer
    settings: NodeSettings
    options: ServerOptions
    """The options the server runs with, limits resolved from the settings."""
    metrics: MetricsEndpoint | None = None
    """The Prometheus endpoint, when node.toml's `[metrics] port` is set."""
    revocations: RevocationList | None = None
    """The CA's revocation list in force, when node.toml sets `crl_file`."""
    certificate: ServingCertificate | None = None
    """The TLS certificate served to new connections (replaced by `reload`)."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def reload(self) -> None:
        """What SIGHUP does: re-read the revocation list and the TLS certificate now
        (after `npcs-node install-cert`); calls in flight are not disturbed."""
        if self.revocations is not None:
            self.revocations.reload()
        if self.certificate is not None:
            self.certificate.reload()

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
    engine = QueryEngine(settings, paths, schema, DataStore(paths, schema), ledger)
    stack.callback(engine.stop_background_checks)
    return engine


def create_server(
    engine: QueryEngine,
    settings: NodeSettings,
    credentials: grpc.ServerCredentials,
    options: ServerOptions,
    *,
    observer: RpcObserver | None = None,
    crl: RevocationList | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started mTLS server with the Node, health and reflection services.

    Limits unset in `options` come from `settings.server`; `observer` (e.g. the metrics)
    hears of every finished Node rpc.
    """
    resolved = options.with_limits_from(settings)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=resolved.max_workers, thread_name_prefix="npcs-rpc"),
        handlers=[NodeServicer(engine, settings, observer).generic_handler()],
        interceptors=[RevocationInterceptor(settings, crl)],
        options=list(SERVER_OPTIONS),
        maximum_concurrent_rpcs=resolved.max_concurrent_rpcs,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _publish_health(health_servicer, engine.healthy)
    # A ledger fault seen on any call turns the health service NOT_SERVING at once.
    engine.add_health_listener(lambda healthy: _publish_health(health_servicer, healthy))
    reflection.enable_server_reflection(
        (
            node_pb2.DESCRIPTOR.services_by_name["Node"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    try:
        port = server.add_secure_port(f"{options.host}:{options.port}", credentials)
    except RuntimeError:  # grpcio raises "Failed to bind to address" (older ones return 0)
        port = 0
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


class RevocationInterceptor(_ServerInterceptor):
    """Refuse callers whose certificate this node revoked, on every service.

    The CA still vouches for a revoked certificate, so the TLS handshake succeeds; this
    runs `node.security.unrevoked_peer` before any handler (Node, health, reflection).
    The Node service then also checks roles and allowed analysts per method.
    """

    def __init__(self, settings: NodeSettings, crl: RevocationList | None = None) -> None:
        self._settings = settings
        self._crl = crl

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = str(getattr(handler_call_details, "method", "?"))
        return _guarded(handler, lambda context: self._admit(context, method))

    def _admit(self, context: grpc.ServicerContext, method: str) -> None:
        try:
            unrevoked_peer(context.auth_context(), self._settings)
            if self._crl is not None:
                refuse_if_listed(context.auth_context(), self._crl)
        except AccessDeniedError as exc:
            code = getattr(grpc.StatusCode, exc.grpc_status, grpc.StatusCode.PERMISSION_DENIED)
            log.info(
                "rpc refused",
                extra={"event": "rpc_refused", "method": method, "code": code.name},
            )
            context.abort(code, str(exc))


def _guarded(
    handler: grpc.RpcMethodHandler[Any, Any], admit: Callable[[grpc.ServicerContext], None]
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with `admit(context)` run before its behaviour (which kind it is)."""

    def guard(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Any:
        def admitted(request: Any, context: grpc.ServicerContext) -> Any:
            admit(context)
            return behaviour(request, context)

        return admitted

    codecs: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary), **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(guard(handler.unary_stream), **codecs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary), **codecs)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(guard(handler.stream_stream), **codecs)
    return handler


@contextmanager
def running_node(
    root: Path, options: ServerOptions | None = None, **overrides: Any
) -> Iterator[RunningNode]:
    """Open the node folder, serve it, and stop with a grace period on exit.

    `overrides` replace node.toml settings (e.g. in tests). Always binds `options.host`
    (default 127.0.0.1) and `options.port` (default 0: a free port).
    """
    settings = load_settings(root, **overrides)
    chosen = (options or ServerOptions()).with_limits_from(settings)
    tune_native_allocator()
    with ExitStack() as stack:
        stack.enter_context(exclusive_serve_lock(root))
        engine = build_engine(root, settings, stack)
        certificate = ServingCertificate(NodePaths(root))
        metrics = stack.enter_context(serving_metrics(root, settings))
        observer = metrics.metrics.observe_rpc if metrics else None
        crl = load_revocation_list(root, settings)
        if crl is not None:
            stack.enter_context(watching(crl))
        server, port, health_servicer = create_server(
            engine, settings, certificate.credentials(), chosen, observer=observer, crl=crl
        )
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
            yield RunningNode(
                server,
                port,
                chosen.host,
                engine,
                health_servicer,
                settings,
                chosen,
                metrics,
                crl,
                certificate,
            )
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
        if record.exc_info and record.exc_info[0] is not None:
            # The kind of error only: a traceback's text could carry data values.
            body["exc_type"] = record.exc_info[0].__name__
        return json.dumps(body, default=str, sort_keys=False)


JSON_LOGGERS = {"npcs": logging.INFO, "grpc": logging.WARNING}
"""The node's own loggers, and gRPC Python's (`grpc._server`, `grpc._channel`, ...), at
their levels: one JSON-lines stream, one format for journald or a log shipper."""


def configure_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> None:
    """Send the node's `npcs.*` logs (at `level`) and gRPC's own Python log lines
    (warnings and errors) to `stream` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonLinesFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    for name, default_level in JSON_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level if name == "npcs" else default_level)
        logger.propagate = False
