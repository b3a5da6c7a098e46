"""The `npcs.v1.Node` gRPC service: authorise, parse, call the engine, map errors to codes.

Thin on purpose: conversion lives in `npcs.serde_*`, decisions in `node.engine`. Handlers
take raw bytes (no generated deserializer), so a malformed message becomes
INVALID_ARGUMENT naming what was wrong, never INTERNAL. The caller is authorised from
the TLS AuthContext before the request is even parsed. At start-up the servicer checks
that its handlers are exactly the rpcs of `npcs.v1.Node` in the compiled descriptor.

Status codes (see node.proto): a dataset the schema does not know is INVALID_ARGUMENT
(field `query.dataset`, from validation); a dataset the schema knows but this node does
not serve, or has no data for, is NOT_FOUND.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from kernel.identity import Peer, Role
from kernel.messages import BudgetShortfall, RequestFieldError
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
from npcs.errors import WireError, budget_metadata, field_metadata
from npcs.serde_ledger import checkpoint_to_proto, ledger_entry_to_proto, query_response_to_proto
from npcs.serde_node import describe_to_proto
from npcs.serde_query import preview_request_from_proto, preview_to_proto, query_request_from_proto
from npcs.transport import MAX_MESSAGE_BYTES, SERVICE_NAME
from npcs.v1 import node_pb2 as pb
from privacy import tlog
from privacy.ledger.errors import LedgerBusy, LedgerFault, QueryIdConflict, ReleaseFailed
from privacy.policy import BudgetExceeded
from privacy.validate import QueryValidationError

log = logging.getLogger("npcs.node.rpc")

Metadata = tuple[tuple[str, str | bytes], ...]

NODE_SERVICE: ServiceDescriptor = pb.DESCRIPTOR.services_by_name["Node"]
"""The Node service as compiled into the generated stubs: the contract handlers must meet."""


class ResponseTooLargeError(RuntimeError):
    """A reply over the message limit: gRPC would fail to send it after the handler
    returned (and the call would be logged OK), so the handler refuses it itself."""

    def __init__(self, method: str, size: int) -> None:
        super().__init__(
            f"the {method} reply would be {size:,} bytes, over the {MAX_MESSAGE_BYTES:,}-byte "
            "message limit; ask for less (a smaller ledger range or a smaller query)"
        )


class ServiceContractError(RuntimeError):
    """The servicer's handlers are not exactly the rpcs of the compiled Node service."""


@dataclass(frozen=True)
class Rpc:
    """One rpc of the Node service: who may call it, its request type, and its handler
    (a NodeServicer method taking the parsed request and the authorised peer)."""

    roles: frozenset[Role]
    request_type: type[Message]
    handle: Callable[[Any, Any, Peer], Message]


@dataclass(frozen=True)
class RpcFailure:
    """A status to end the call with: code, message, optional trailing metadata."""

    code: grpc.StatusCode
    message: str
    metadata: Metadata = ()


RpcObserver = Callable[[str, str, float, str | None], None]
"""Told of every finished rpc: method, gRPC code name, seconds, and the dataset named by
the request (None if it names none or was not parsed). E.g. `NodeMetrics.observe_rpc`."""


class NodeServicer:
    """Every RPC of the Node service, for one engine."""

    def __init__(
        self, engine: QueryEngine, settings: NodeSettings, observer: RpcObserver | None = None
    ) -> None:
        self.check_contract()
        self._engine = engine
        self._settings = settings
        self._observer = observer

    @classmethod
    def rpcs(cls) -> Mapping[str, Rpc]:
        """The handler of every rpc, by its name in the service."""
        return {
            "Describe": Rpc(ANALYST_ROLES | AUDITOR_ROLES, pb.DescribeRequest, cls._describe),
            "Query": Rpc(ANALYST_ROLES, pb.QueryRequest, cls._query),
            "Preview": Rpc(ANALYST_ROLES, pb.PreviewRequest, cls._preview),
            "GetCheckpoint": Rpc(MEMBER_ROLES, pb.GetCheckpointRequest, cls._get_checkpoint),
            "GetLedger": Rpc(AUDITOR_ROLES, pb.GetLedgerRequest, cls._get_ledger),
            "GetConsistencyProof": Rpc(
                AUDITOR_ROLES, pb.GetConsistencyProofRequest, cls._get_consistency_proof
            ),
        }

    @classmethod
    def check_contract(cls) -> None:
        """Refuse to serve unless the handlers are exactly the compiled service's rpcs."""
        check_rpcs_match_service(cls.rpcs(), NODE_SERVICE, served_as=SERVICE_NAME)

    def generic_handler(self) -> grpc.GenericRpcHandler[bytes, bytes]:
        handlers = {name: self._unary(name, rpc) for name, rpc in self.rpcs().items()}
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    # -- plumbing

    def _unary(self, method: str, rpc: Rpc) -> grpc.RpcMethodHandler[bytes, bytes]:
        def handler(raw: bytes, context: grpc.ServicerContext) -> bytes:
            started = time.perf_counter()
            caller = "-"
            code = grpc.StatusCode.OK
            dataset: str | None = None
            try:
                peer = authorise_caller(context.auth_context(), self._settings, rpc.roles)
                caller = peer.identity.uri
                request = _parse(rpc.request_type, raw)
                dataset = _dataset_named(request)
                return _within_message_limit(method, rpc.handle(self, request, peer))
            except Exception as exc:
                failure = _failure_for(exc, method)
                code = failure.code
                _abort(context, failure)
            finally:
                seconds = time.perf_counter() - started
                log.info(
                    "rpc",
                    extra={
                        "event": "rpc",
                        "method": method,
                        "caller": caller,
                        "code": code.name,
                        "ms": round(seconds * 1000, 3),
                    },
                )
                if self._observer is not None:
                    self._observer(method, code.name, seconds, dataset)

        return grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=None, response_serializer=None
        )

    # -- methods

    def _describe(self, request: pb.DescribeRequest, peer: Peer) -> pb.DescribeResponse:
        description = self._engine.describe(
            peer.identity, unit_kind_epsilon=request.unit_kind_epsilon
        )
        response = describe_to_proto(description)
        if description.latest_checkpoint is not None:
            self._prove_growth(
                request.remembered_size, description.latest_checkpoint.signed, response
            )
        return response

    def _preview(self, request: pb.PreviewRequest, peer: Peer) -> pb.PreviewResponse:
        spec = preview_request_from_proto(request)
        response = preview_to_proto(self._engine.preview(spec, peer.identity))
        if request.describe:  # Describe folded in: one call instead of two (issue 12)
            described = pb.DescribeRequest(remembered_size=request.remembered_size)
            response.description.CopyFrom(self._describe(described, peer))
        return response

    def _query(self, request: pb.QueryRequest, peer: Peer) -> pb.QueryResponse:
        call = query_request_from_proto(request)
        outcome = self._engine.answer(call.spec, peer, call.signed)
        response = query_response_to_proto(
            outcome.answer, outcome.receipt, self._engine.ledger_key_fingerprint
        )
        self._prove_growth(request.remembered_size, outcome.receipt.checkpoint, response.receipt)
        return response

    def _get_checkpoint(
        self, request: pb.GetCheckpointRequest, _peer: Peer
    ) -> pb.GetCheckpointResponse:
        checkpoint = self._engine.latest_checkpoint()
        response = pb.GetCheckpointResponse(
            checkpoint=checkpoint_to_proto(checkpoint, self._engine.ledger_key_fingerprint)
        )
        self._prove_growth(request.remembered_size, checkpoint, response)
        return response

    def _prove_growth(
        self,
        remembered_size: int,
        checkpoint: tlog.SignedCheckpoint,
        response: pb.Receipt | pb.DescribeResponse | pb.GetCheckpointResponse,
    ) -> None:
        """Set `response.consistency`: the proof that `checkpoint` extends the tree of
        `remembered_size` entries the caller remembers. Left unset when the caller
        remembers none, or more than the checkpoint holds, or the proof cannot be made:
        the caller then refuses the answer (its ledger shrank or cannot show it grew).
        Never fails the call: a Query's answer is already charged."""
        size = checkpoint.checkpoint.size
        if not 0 < remembered_size <= size:
            return
        proof: tuple[bytes, ...] = ()
        if remembered_size < size:
            try:
                proof, _ = self._engine.consistency_proof(remembered_size, size)
            except (LedgerRangeError, LedgerFault) as exc:
                log.warning(
                    "no consistency proof for a caller",
                    extra={"event": "growth_proof_missing", "error_type": type(exc).__name__},
                )
                return
        response.consistency.CopyFrom(
            pb.ConsistencyFromRemembered(old_size=remembered_size, proof=list(proof))
        )

    def _get_ledger(self, request: pb.GetLedgerRequest, _peer: Peer) -> pb.GetLedgerResponse:
        page = self._engine.ledger_slice(request.start, request.end)
        return pb.GetLedgerResponse(
            entries=[ledger_entry_to_proto(entry) for entry in page.entries],
            checkpoint=checkpoint_to_proto(page.checkpoint, self._engine.ledger_key_fingerprint),
        )

    def _get_consistency_proof(
        self, request: pb.GetConsistencyProofRequest, _peer: Peer
    ) -> pb.GetConsistencyProofResponse:
        proof, checkpoint = self._engine.consistency_proof(request.old_size, request.new_size)
        return pb.GetConsistencyProofResponse(
            proof=list(proof),
            checkpoint=checkpoint_to_proto(checkpoint, self._engine.ledger_key_fingerprint),
        )


def check_rpcs_match_service(
    rpcs: Mapping[str, Rpc], service: ServiceDescriptor, *, served_as: str
) -> None:
    """Raise ServiceContractError unless `rpcs`, served under the name `served_as`,
    handle exactly the service's methods, each unary with the declared request type."""
    declared = {method.name: method for method in service.methods}
    problems = []
    if served_as != service.full_name:
        problems.append(f"it would serve {served_as}, not {service.full_name}")
    missing = sorted(set(declared) - set(rpcs))
    if missing:
        problems.append(f"no handler for {', '.join(missing)}")
    extra = sorted(set(rpcs) - set(declared))
    if extra:
        problems.append(f"handlers for rpcs the service does not declare: {', '.join(extra)}")
    for name in sorted(set(rpcs) & set(declared)):
        method = declared[name]
        wanted = method.input_type.full_name
        given = rpcs[name].request_type.DESCRIPTOR.full_name
        if given != wanted:
            problems.append(f"{name} parses {given}, but the service declares {wanted}")
        if method.client_streaming or method.server_streaming:
            problems.append(f"{name} is a streaming rpc; this servicer handles only unary rpcs")
    if problems:
        raise ServiceContractError(
            f"the node's servicer does not match the compiled {service.full_name} service: "
            + "; ".join(problems)
            + ". Regenerate the stubs from proto/npcs/v1/node.proto or update "
            "node/servicer.py so both agree."
        )


def _dataset_named(request: Message) -> str | None:
    """The dataset a Query or Preview request names, as sent (unchecked)."""
    if isinstance(request, pb.QueryRequest | pb.PreviewRequest) and request.HasField("query"):
        return request.query.dataset
    return None


def _parse(request_type: type[Message], raw: bytes) -> Message:
    try:
        return request_type.FromString(raw)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise WireError(
            request_type.DESCRIPTOR.name, f"is not a valid {request_type.DESCRIPTOR.full_name}"
        ) from exc


def _within_message_limit(method: str, response: Message) -> bytes:
    data = response.SerializeToString()
    if len(data) > MAX_MESSAGE_BYTES:
        raise ResponseTooLargeError(method, len(data))
    return data


def _abort(context: grpc.ServicerContext, failure: RpcFailure) -> NoReturn:
    if failure.metadata:
        context.set_trailing_metadata(failure.metadata)
    context.abort(failure.code, failure.message)
    raise AssertionError("context.abort returned")  # abort always raises


def _failure_for(exc: Exception, method: str) -> RpcFailure:  # noqa: PLR0911 - one branch per kind
    """The status a domain exception means. Unknown exceptions reveal nothing."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, WireError | RequestFieldError):
        return RpcFailure(invalid, str(exc), field_metadata(exc.field, exc.message))
    if isinstance(exc, QueryValidationError):
        field = f"query.{exc.field}" if exc.field else "query"
        return RpcFailure(invalid, f"{field}: {exc.message}", field_metadata(field, exc.message))
    if isinstance(exc, AccessDeniedError | RequestRejectedError):
        status = getattr(grpc.StatusCode, exc.grpc_status, grpc.StatusCode.PERMISSION_DENIED)
        return RpcFailure(status, str(exc))
    if isinstance(exc, BudgetExceeded):
        shortfall = BudgetShortfall(
            dataset=exc.dataset,
            scope=exc.scope,
            requested_units=exc.requested_units,
            remaining_units=exc.remaining_units,
        )
        return RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), budget_metadata(shortfall))
    if isinstance(exc, ResponseTooLargeError):
        return RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    if isinstance(exc, QueryIdConflict):
        return RpcFailure(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    if isinstance(exc, DatasetUnavailableError | LedgerRangeError):
        return RpcFailure(grpc.StatusCode.NOT_FOUND, str(exc))
    if isinstance(exc, LedgerBusy):
        log.warning("ledger busy", extra={"event": "ledger_busy", "method": method})
        return RpcFailure(
            grpc.StatusCode.UNAVAILABLE,
            "this node's ledger is busy (locked by another process); retry later",
        )
    if isinstance(exc, LedgerFault):
        # The fault text names server paths and internals: it goes to the node's log only.
        log.error(
            "ledger fault", extra={"event": "ledger_fault", "method": method, "fault": str(exc)}
        )
        return RpcFailure(
            grpc.StatusCode.FAILED_PRECONDITION,
            "this node's ledger failed its checks and the node answers no query; its "
            "operator must see the node's log, run `npcs-node ledger verify` and restart it",
        )
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
