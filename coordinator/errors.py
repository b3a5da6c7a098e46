"""The coordinator's typed errors, and gRPC failures as analysts should read them.

Service modules raise `CoordinatorError` subclasses whose message says what was wrong
and what to do; the command line turns them into click errors in one place
(`coordinator.cli.errors`). Every node failure becomes a short code (the gRPC status
name, or UNREACHABLE for a node that cannot be contacted) and a sentence saying what
happened and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "UNREACHABLE", "TLS"})
"""Failures a retry with the same query_id may fix (the node never double-charges)."""

LEDGER_UNTRUSTED = "LEDGER_UNTRUSTED"
"""The code of a node whose answer was withheld because its ledger shrank, forked or
could not prove it only grew (`coordinator.checkpoints.check_continuity`)."""


@dataclass(frozen=True)
class NodeProblem:
    """Why one node did not answer."""

    code: str
    reason: str

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class CoordinatorError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""


class InvalidArgumentError(CoordinatorError):
    """A command-line value that cannot be used (shown with the command's usage)."""


class SetupError(CoordinatorError):
    """The partnership file or the user's credentials cannot be used as they are."""


class CheckpointStoreError(CoordinatorError):
    """The remembered-checkpoint store cannot be read or is not one."""


class NodeCallError(CoordinatorError):
    """A call to a node failed; carries the explained problem."""

    def __init__(self, problem: NodeProblem) -> None:
        super().__init__(f"{problem.code}: {problem.reason}")
        self.problem = problem


def explain_rpc_error(error: grpc.RpcError, *, address: str, timeout: float) -> NodeProblem:
    """The code and a readable reason for a failed call to the node at `address`."""
    import grpc

    from npcs.errors import budget_shortfall_from_metadata, field_violation_from_metadata

    code = error.code() if isinstance(error, grpc.Call) else None
    details = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
    metadata = error.trailing_metadata() if isinstance(error, grpc.Call) else None
    if code is grpc.StatusCode.UNAVAILABLE:
        return _unavailable(details, address)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return NodeProblem(
            "DEADLINE_EXCEEDED",
            f"no answer from {address} within {timeout:g} s; the node is slow or stuck "
            "(retrying re-uses the same query_id, so it is never charged twice)",
        )
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        shortfall = budget_shortfall_from_metadata(metadata)
        if shortfall is not None:
            return NodeProblem("RESOURCE_EXHAUSTED", f"out of budget: {shortfall.describe()}")
        # Without budget details it is a size limit (the node's, or gRPC's own).
        return NodeProblem(
            "RESOURCE_EXHAUSTED",
            f"message too large: {_first_line(details)}; ask for less "
            "(fewer cells, quantiles or groups)",
        )
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = field_violation_from_metadata(metadata)
        reason = f"{violation[0]}: {violation[1]}" if violation else details
        return NodeProblem("INVALID_ARGUMENT", f"the node refused the query: {reason}")
    name = code.name if code is not None else "UNKNOWN"
    return NodeProblem(name, _HINTS.get(name, "") + details)


_HINTS = {
    "PERMISSION_DENIED": "refused by node policy: ",
    "UNAUTHENTICATED": "authentication failed: ",
    "NOT_FOUND": "not available at this node: ",
    "ALREADY_EXISTS": "query_id already used for a different query: ",
    "FAILED_PRECONDITION": "the node's ledger failed its self-check, it answers nothing: ",
}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no details"


_TLS_MARKERS = ("handshake", "ssl", "certificate", "tsi_")
_CLOSED_IN_HANDSHAKE = "socket closed"


def _tls_reason(details: str) -> str:
    lowered = details.lower()
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return "the node's certificate is not signed by your partnership's CA"
    if "peer name" in lowered or "hostname" in lowered:
        return "the node's certificate does not name this address"
    if _CLOSED_IN_HANDSHAKE in lowered and not any(m in lowered for m in _TLS_MARKERS):
        return "the node closed the connection during the handshake: it refused your certificate"
    return _first_line(details)


def _unavailable(details: str, address: str) -> NodeProblem:
    """A node that cannot be contacted: a TLS refusal, or not reachable at all."""
    from npcs.transport import is_tls_failure

    if is_tls_failure(details):
        return NodeProblem(
            "TLS",
            f"the TLS handshake with {address} failed ({_tls_reason(details)}): "
            "check that ca_certificate in partnership.toml is your partnership's CA, that "
            "the node's certificate names the address you dial, and that your certificate "
            "is current and not revoked",
        )
    return NodeProblem(
        "UNREACHABLE",
        f"cannot reach the node at {address} ({_first_line(details)}); is it running, "
        "and is the address in partnership.toml right?",
    )
