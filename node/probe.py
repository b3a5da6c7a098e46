"""Asking a running node whether it serves: the standard `grpc.health.v1` check over mTLS.

Used by `npcs-node health` as a readiness/liveness probe, so this path imports gRPC and
the health stubs only (no Polars, no OpenDP). Each outcome has its own exit code, so a
monitoring system can tell "up but answering nothing" from "not there" from "a
certificate is wrong":

- 0 SERVING: the node answers queries.
- 3 NOT_SERVING: the node runs but answers no query (its ledger failed its self-check).
- 4 UNREACHABLE: nothing answered at the address in time (not running, wrong address,
  firewall).
- 5 REFUSED: something answered but the mTLS handshake or the node's policy refused
  the probe (untrusted or mismatched certificate, revoked or expired certificate).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from npcs.transport import CLIENT_OPTIONS, is_tls_failure


class ProbeOutcome(IntEnum):
    """What the probe found; the value is the command's exit code."""

    SERVING = 0
    NOT_SERVING = 3
    UNREACHABLE = 4
    REFUSED = 5


@dataclass(frozen=True)
class ProbeCredentials:
    """PEM bytes of the trusted CA, and the certificate and key the probe presents."""

    ca_pem: bytes
    certificate_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ProbeResult:
    outcome: ProbeOutcome
    address: str
    detail: str
    seconds: float
    """Wall time of the check itself (channel set-up, handshake and call)."""


def probe_health(
    address: str,
    credentials: ProbeCredentials,
    *,
    timeout: float,
    service: str = "",
    server_name: str | None = None,
) -> ProbeResult:
    """Ask the node at `address` (HOST:PORT) for its health, within `timeout` seconds.

    `service` "" is the whole server (as `grpc_health_probe` asks); `server_name`
    overrides the name the node's certificate must carry (default: the host of
    `address`).
    """
    started = time.perf_counter()
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.ca_pem,
        private_key=credentials.key_pem,
        certificate_chain=credentials.certificate_pem,
    )
    options = list(CLIENT_OPTIONS)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))  # type: ignore[arg-type]
    with grpc.secure_channel(address, channel_credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            outcome, detail = _classify(error, address, timeout)
        else:
            outcome, detail = _from_status(response.status)
    return ProbeResult(outcome, address, detail, time.perf_counter() - started)


def _from_status(status: int) -> tuple[ProbeOutcome, str]:
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    if status == health_pb2.HealthCheckResponse.SERVING:
        return ProbeOutcome.SERVING, "SERVING"
    return ProbeOutcome.NOT_SERVING, (
        f"{name}: the node runs but answers no query; see its log and run "
        "`npcs-node ledger verify` on its folder"
    )


def _classify(error: grpc.RpcError, address: str, timeout: float) -> tuple[ProbeOutcome, str]:
    code = error.code() if isinstance(error, grpc.Call) else None
    details = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
    first_line = details.strip().splitlines()[0] if details.strip() else "no details"
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return ProbeOutcome.REFUSED, f"the node refused the probe's certificate: {first_line}"
    if code is grpc.StatusCode.UNAVAILABLE and is_tls_failure(details):
        return ProbeOutcome.REFUSED, (
            f"TLS handshake with {address} failed ({first_line}); check that both sides "
            "trust the same partnership CA and that the node's certificate names this host"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return ProbeOutcome.UNREACHABLE, f"no answer from {address} within {timeout:g} s"
    if code is grpc.StatusCode.NOT_FOUND:
        return ProbeOutcome.NOT_SERVING, f"the node does not report this service: {first_line}"
    name = code.name if code is not None else "UNKNOWN"
    return ProbeOutcome.UNREACHABLE, (
        f"cannot reach a node at {address} ({name}: {first_line}); is it running, and is "
        "the address right?"
    )
