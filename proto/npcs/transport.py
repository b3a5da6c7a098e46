"""gRPC transport settings shared by node and clients, so both sides agree.

Keepalive: clients ping at most every `CLIENT_KEEPALIVE_TIME_MS`, which the server
permits (`SERVER_MIN_PING_INTERVAL_MS` is lower); mismatched settings make servers send
GOAWAY "too_many_pings". Message size: 4 MiB both ways; a larger message is refused with
RESOURCE_EXHAUSTED before any handler runs.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

MESSAGE_RESERVE_BYTES = 512 * 1024
"""Room in a message for everything but the answer: the receipt's proof and checkpoint,
and in a ledger entry the canonical query, signed request, purpose and summaries."""
MAX_RELEASE_BYTES = (MAX_MESSAGE_BYTES - MESSAGE_RESERVE_BYTES) * 3 // 7
"""Largest answer a node charges for. An answer travels twice in one message, raw and in
base64 inside the leaf data (1 + 4/3 = 7/3 times its size), both in a QueryResponse and
in a GetLedger entry: so it always reaches the analyst and fits one audit page."""
MAX_LEDGER_PAGE_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""GetLedger fills a page with entries up to this size (the rest is the checkpoint)."""
SERVICE_NAME = "npcs.v1.Node"

CLIENT_KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000
SERVER_MIN_PING_INTERVAL_MS = 30_000

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 2 * CLIENT_KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
    ("grpc.http2.max_ping_strikes", 2),
    # SO_REUSEPORT would let a second node silently share a port: refuse instead.
    ("grpc.so_reuseport", 0),
)

CLIENT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


# gRPC reports TLS failures as UNAVAILABLE. Our side refusing the peer's certificate
# names the handshake (untrusted CA, a certificate without the host dialled); the peer
# refusing ours shows as the connection closed right after it was accepted ("Socket
# closed"), whereas a peer that is not running refuses the connection itself.
_TLS_FAILURE_MARKERS = (
    "handshake",
    "ssl",
    "tls",
    "certificate",
    "tsi_",
    "peer name",
    "hostname",
    "socket closed",
)


# A peer that dies or is cut off mid-handshake also names the handshake ("Handshake read
# failed (recvmsg:Connection reset by peer)"): that is a node going away, not a
# certificate problem, and wins over the markers above.
_CONNECTION_LOST_MARKERS = ("connection reset", "connection refused", "broken pipe")


def is_tls_failure(details: str) -> bool:
    """Whether an UNAVAILABLE call failed in the TLS handshake rather than connecting
    (used by the coordinator and by `npcs-node health`)."""
    lowered = details.lower()
    if any(marker in lowered for marker in _CONNECTION_LOST_MARKERS):
        return False
    return any(marker in lowered for marker in _TLS_FAILURE_MARKERS)
