"""The `npcs.v1.Node` gRPC service: authorise, parse, call the engine, map errors to codes.

Thin on purpose: conversion lives in `npcs.wire`, decisions in `node.engine`. Handlers
take raw bytes (no generated deserializer), so a malformed message becomes
INVALID_ARGUMENT naming what was wrong, never INTERNAL. The caller is authorised from
the TLS AuthContext before the request is even parsed.

Status codes (see node.proto): a dataset the schema does not know is INVALID_ARGUMENT
(field `query.dataset`, from validation); a dataset the schema knows but this node does
not serve, or has no data for, is NOT_FOUND.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from kernel.identity import Peer, Role
from kernel.signing import RequestRejectedError
from node.engine import DatasetUnavailableError, LedgerRangeError, QueryEngine
from node.security import (
    ANALYST_ROLES,
    AUDITOR_ROLES,
    MEMBER_ROLES,
    AccessDeniedError,
    authorise_caller,
)
from node.settings import NodeSettings
from npcs import wire
from npcs.transport import SERVICE_NAME
from npcs.v1 import node_pb2 as pb
from privacy.ledger import LedgerFault, QueryIdConflict, ReleaseFailed
from privacy.policy import BudgetExceeded
from privacy.validate import QueryValidationError

log = logging.getLogger("npcs.node.rpc")

RequestT = TypeVar("RequestT", bound=Message)
Metadata = tuple[tuple[str, str | bytes], ...]


@dataclass(frozen=True)
class RpcFailure:
    """A status to end the call with: code, message, optional trailing metadata."""

    code: grpc.StatusCode
    message: str
    metadata: Metadata = ()


class NodeServicer:
    """Every RPC of the Node service, for one engine."""

    def __init__(self, engine: QueryEngine, settings: NodeSettings) -> None:
        self._engine = engine
        self._settings = settings

    def generic_handler(self) -> grpc.GenericRpcHandler[bytes, bytes]:
        handlers = {
            "Describe": self._unary(
                "Describe", ANALYST_ROLES | AUDITOR_ROLES, pb.DescribeRequest, self._describe
            ),
            "Query": self._unary("Query", ANALYST_ROLES, pb.QueryRequest, self._query),
            "Preview": self._unary("Preview", ANALYST_ROLES, pb.PreviewRequest, self._preview),
            "GetCheckpoint": self._unary(
                "GetCheckpoint", MEMBER_ROLES, pb.GetCheckpointRequest, self._get_checkpoint
            ),
            "GetLedger": self._unary(
                "GetLedger", AUDITOR_ROLES, pb.GetLedgerRequest, self._get_ledger
            ),
            "GetConsistencyProof": self._unary(
                "GetConsistencyProof",
                AUDITOR_ROLES,
                pb.GetConsistencyProofRequest,
                self._get_consistency_proof,
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    # -- plumbing

    def _unary(
        self,
        method: str,
        roles: Collection[Role],
        request_type: type[RequestT],
        handle: Callable[[RequestT, Peer], Message],
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        def handler(raw: bytes, context: grpc.ServicerContext) -> bytes:
            started = time.perf_counter()
            caller = "-"
            code = grpc.StatusCode.OK
            try:
                peer = authorise_caller(context.auth_context(), self._settings, roles)
                caller = peer.identity.uri
                request = _parse(request_type, raw)
                return handle(request, peer).SerializeToString()
            except Exception as exc:
                failure = _failure_for(exc, method)
                code = failure.code
                _abort(context, failure)
            finally:
                log.info(
                    "rpc",
                    extra={
                        "event": "rpc",
                        "method": method,
                        "caller": caller,
                        "code": code.name,
                        "ms": round((time.perf_counter() - started) * 1000, 3),
                    },
                )

        return grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=None, response_serializer=None
        )

    # -- methods

    def _describe(self, _request: pb.DescribeRequest, peer: Peer) -> pb.DescribeResponse:
        return wire.describe_to_proto(self._engine.describe(peer.identity))

    def _preview(self, request: pb.PreviewRequest, peer: Peer) -> pb.PreviewResponse:
        spec = wire.preview_request_from_proto(request)
        outcome = self._engine.preview(spec, peer.identity)
        return wire.preview_to_proto(outcome.cost_units, outcome.expected, outcome.remaining_units)

    def _query(self, request: pb.QueryRequest, peer: Peer) -> pb.QueryResponse:
        call = wire.query_request_from_proto(request)
        outcome = self._engine.answer(call.spec, peer, call.signed)
        return wire.query_response_to_proto(
            outcome.answer, outcome.receipt, self._engine.ledger_key_fingerprint
        )

    def _get_checkpoint(
        self, _request: pb.GetCheckpointRequest, _peer: Peer
    ) -> pb.GetCheckpointResponse:
        checkpoint = self._engine.latest_checkpoint()
        return pb.GetCheckpointResponse(
            checkpoint=wire.checkpoint_to_proto(checkpoint, self._engine.ledger_key_fingerprint)
        )

    def _get_ledger(self, request: pb.GetLedgerRequest, _peer: Peer) -> pb.GetLedgerResponse:
        page = self._engine.ledger_slice(request.start, request.end)
        return pb.GetLedgerResponse(
            entries=[wire.ledger_entry_to_proto(entry) for entry in page.entries],
            checkpoint=wire.checkpoint_to_proto(
                page.checkpoint, self._engine.ledger_key_fingerprint
            ),
        )

    def _get_consistency_proof(
        self, request: pb.GetConsistencyProofRequest, _peer: Peer
    ) -> pb.GetConsistencyProofResponse:
        proof, checkpoint = self._engine.consistency_proof(request.old_size, request.new_size)
        return pb.GetConsistencyProofResponse(
            proof=list(proof),
            checkpoint=wire.checkpoint_to_proto(checkpoint, self._engine.ledger_key_fingerprint),
        )


def _parse(request_type: type[RequestT], raw: bytes) -> RequestT:
    try:
        return request_type.FromString(raw)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise wire.WireError(
            request_type.DESCRIPTOR.name, f"is not a valid {request_type.DESCRIPTOR.full_name}"
        ) from exc


def _abort(context: grpc.ServicerContext, failure: RpcFailure) -> NoReturn:
    if failure.metadata:
        context.set_trailing_metadata(failure.metadata)
    context.abort(failure.code, failure.message)
    raise AssertionError("context.abort returned")  # abort always raises


def _failure_for(exc: Exception, method: str) -> RpcFailure:  # noqa: PLR0911 - one branch per kind
    """The status a domain exception means. Unknown exceptions reveal nothing."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, wire.WireError):
        return RpcFailure(invalid, str(exc), wire.field_metadata(exc.field, exc.message))
    if isinstance(exc, QueryValidationError):
        field = f"query.{exc.field}" if exc.field else "query"
        return RpcFailure(
            invalid, f"{field}: {exc.message}", wire.field_metadata(field, exc.message)
        )
    if isinstance(exc, AccessDeniedError | RequestRejectedError):
        status = getattr(grpc.StatusCode, exc.grpc_status, grpc.StatusCode.PERMISSION_DENIED)
        return RpcFailure(status, str(exc))
    if isinstance(exc, BudgetExceeded):
        shortfall = wire.BudgetShortfall(
            dataset=exc.dataset,
            scope=exc.scope,
            requested_units=exc.requested_units,
            remaining_units=exc.remaining_units,
        )
        return RpcFailure(
            grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), wire.budget_metadata(shortfall)
        )
    if isinstance(exc, QueryIdConflict):
        return RpcFailure(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    if isinstance(exc, DatasetUnavailableError | LedgerRangeError):
        return RpcFailure(grpc.StatusCode.NOT_FOUND, str(exc))
    if isinstance(exc, LedgerFault):
        log.error("ledger fault", extra={"event": "ledger_fault", "method": method})
        return RpcFailure(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    if isinstance(exc, ReleaseFailed):
        log.error("release failed after charge", extra={"event": "release_failed"})
        return RpcFailure(
            grpc.StatusCode.INTERNAL,
            "the release failed after its charge was recorded; retry with a new query_id",
        )
    # The message of an unexpected error might depend on private data: log only its type
    # and where it was raised, and tell the caller nothing.
    log.error(
        "internal error",
        extra={"event": "internal_error", "method": method, **_where(exc)},
    )
    return RpcFailure(grpc.StatusCode.INTERNAL, "internal error at the node; see its log")


def _where(exc: BaseException) -> dict[str, str]:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return {
        "error_type": type(exc).__name__,
        "raised_at": f"{last.filename}:{last.lineno}" if last else "?",
    }
