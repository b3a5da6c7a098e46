"""Which UNAVAILABLE details are certificate problems and which are a node going away."""

from __future__ import annotations

import pytest

from npcs.transport import is_tls_failure


@pytest.mark.parametrize(
    "details",
    [
        "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:10.0.0.2:50051: "
        "Handshake read failed (recvmsg:Connection reset by peer (104))",
        "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:1: "
        "Connection refused",
    ],
)
def test_a_peer_that_died_or_refused_the_connection_is_not_a_tls_problem(details: str) -> None:
    assert not is_tls_failure(details)


@pytest.mark.parametrize(
    "details",
    [
        "Ssl handshake failed: SSL_ERROR_SSL: error:1000007d:SSL routines:"
        "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
        "failed to connect to all addresses; last error: UNAVAILABLE: Socket closed",
        "Peer name 10.0.0.2 is not in peer certificate",
    ],
)
def test_certificate_refusals_are_tls_problems(details: str) -> None:
    assert is_tls_failure(details)
