"""Signed query requests: what a node accepts and every way it refuses (real Ed25519)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from coordinator.ca import CertificateAuthority, init_ca, issue_person_credentials
from kernel.identity import Peer, peer_from_certificate
from kernel.keyfiles import load_certificate_file, load_ed25519_private_key
from kernel.signing import (
    MAX_CLOCK_SKEW_SECONDS,
    BadSignature,
    ExpiredRequest,
    MalformedRequest,
    QueryHashMismatch,
    QueryIdMismatch,
    ReplayedRequest,
    ReplayGuard,
    RequestEnvelope,
    SignedRequest,
    UnboundSigningKey,
    WrongAudience,
    admit_signed_request,
    new_envelope,
    query_hash,
    sign_request,
)

NOW = 1_750_000_000
QUERY = b'{"dataset":"incidents","kind":"count"}'


@dataclasses.dataclass(frozen=True)
class Analyst:
    peer: Peer
    signing_key: ed25519.Ed25519PrivateKey


@pytest.fixture(scope="module")
def analyst(tmp_path_factory: pytest.TempPathFactory) -> Analyst:
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca", "demo")
    authority = CertificateAuthority.load(root / "ca")
    issue_person_credentials(authority, role="analyst", name="alice", out_dir=root / "alice")
    return Analyst(
        peer=peer_from_certificate(load_certificate_file(root / "alice" / "tls.crt")),
        signing_key=load_ed25519_private_key(root / "alice" / "signing.key"),
    )


def signed_query(
    analyst: Analyst, *, issued_at: int = NOW, audience: str = "county-a"
) -> SignedRequest:
    envelope = new_envelope(
        audience=audience,
        query_id="q-1",
        canonical_query=QUERY,
        cost_rho_units=250_000,
        now=issued_at,
    )
    return sign_request(envelope, analyst.signing_key)


def admit(
    signed: SignedRequest,
    caller: Peer,
    *,
    guard: ReplayGuard | None = None,
    now: float = NOW,
    query: bytes = QUERY,
    recorded: frozenset[str] = frozenset(),
    query_id: str = "q-1",
) -> bool:
    admitted = admit_signed_request(
        signed,
        caller=caller,
        node_name="county-a",
        query_id=query_id,
        canonical_query=query,
        replay_guard=guard if guard is not None else ReplayGuard(),
        is_recorded=recorded.__contains__,
        now=now,
    )
    return admitted.is_recorded_retry


def test_valid_request_is_admitted_with_its_envelope(analyst: Analyst) -> None:
    signed = signed_query(analyst)
    admitted = admit_signed_request(
        signed,
        caller=analyst.peer,
        node_name="county-a",
        query_id="q-1",
        canonical_query=QUERY,
        replay_guard=ReplayGuard(),
        is_recorded=lambda _query_id: False,
        now=NOW + 5,
    )
    assert not admitted.is_recorded_retry
    assert admitted.envelope.query_hash == query_hash(QUERY)
    assert admitted.envelope.cost_rho_units == 250_000
    assert signed.signer_key_fingerprint == analyst.peer.signing_key_fingerprint


def test_envelope_bytes_are_canonical_sorted_compact_json(analyst: Analyst) -> None:
    signed = signed_query(analyst)
    decoded = json.loads(signed.envelope_bytes)
    assert (
        signed.envelope_bytes == json.dumps(decoded, sort_keys=True, separators=(",", ":")).encode()
    )
    assert decoded["audience"] == "county-a"
    assert len(decoded["nonce"]) == 32


def test_replayed_request_is_refused(analyst: Analyst) -> None:
    guard = ReplayGuard()
    signed = signed_query(analyst)
    admit(signed, analyst.peer, guard=guard)
    with pytest.raises(ReplayedRequest, match="nonce already seen"):
        admit(signed, analyst.peer, guard=guard, now=NOW + 1)


def test_retry_of_a_recorded_query_id_is_admitted_for_the_ledger_answer(analyst: Analyst) -> None:
    """After a restart (empty guard) or long after, an identical retry gets the stored answer."""
    guard = ReplayGuard()
    signed = signed_query(analyst)
    admit(signed, analyst.peer, guard=guard)
    assert admit(signed, analyst.peer, guard=guard, recorded=frozenset({"q-1"}))
    assert admit(signed, analyst.peer, now=NOW + 3600, recorded=frozenset({"q-1"}))


@pytest.mark.parametrize("recorded", [frozenset(), frozenset({"q-1"}), frozenset({"q-2"})])
def test_envelope_for_another_query_id_is_refused_recorded_or_not(
    analyst: Analyst, recorded: frozenset[str]
) -> None:
    """Issue 11 defect 2: an envelope naming q-1 never admits query q-2, even a day old."""
    signed = signed_query(analyst, issued_at=NOW - 86_400)
    with pytest.raises(QueryIdMismatch, match="names query_id 'q-1'"):
        admit(signed, analyst.peer, query_id="q-2", recorded=recorded)


@pytest.mark.parametrize("offset", [MAX_CLOCK_SKEW_SECONDS + 1, -(MAX_CLOCK_SKEW_SECONDS + 1)])
def test_request_outside_the_freshness_window_is_refused(analyst: Analyst, offset: int) -> None:
    """Too old (node clock ahead) and too far in the future (node clock behind) both fail."""
    signed = signed_query(analyst, issued_at=NOW - offset)
    with pytest.raises(ExpiredRequest, match="300 s"):
        admit(signed, analyst.peer)


@pytest.mark.parametrize("offset", [MAX_CLOCK_SKEW_SECONDS, -MAX_CLOCK_SKEW_SECONDS])
def test_request_at_the_edge_of_the_window_is_admitted(analyst: Analyst, offset: int) -> None:
    assert not admit(signed_query(analyst, issued_at=NOW - offset), analyst.peer)


def test_request_for_another_node_is_refused(analyst: Analyst) -> None:
    with pytest.raises(WrongAudience, match="county-b"):
        admit(signed_query(analyst, audience="county-b"), analyst.peer)


def test_tampered_envelope_fails_the_signature(analyst: Analyst) -> None:
    signed = signed_query(analyst)
    tampered = signed.envelope_bytes.replace(b'"cost_rho_units":250000', b'"cost_rho_units":1')
    assert tampered != signed.envelope_bytes
    with pytest.raises(BadSignature, match="does not verify"):
        admit(dataclasses.replace(signed, envelope_bytes=tampered), analyst.peer)


def test_request_signed_with_a_key_not_bound_to_the_certificate_is_refused(
    analyst: Analyst,
) -> None:
    """A valid signature by someone else's key does not authorise a charge for this caller."""
    envelope = RequestEnvelope.from_bytes(signed_query(analyst).envelope_bytes)
    other_key_signed = sign_request(envelope, ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(UnboundSigningKey, match="sign with your own key"):
        admit(other_key_signed, analyst.peer)


def test_caller_certificate_without_a_signing_key_is_refused(analyst: Analyst) -> None:
    caller = dataclasses.replace(analyst.peer, signing_key_fingerprint=None)
    with pytest.raises(UnboundSigningKey, match="no request-signing key"):
        admit(signed_query(analyst), caller)


def test_query_not_matching_the_signed_hash_is_refused(analyst: Analyst) -> None:
    with pytest.raises(QueryHashMismatch, match="sign the exact query"):
        admit(signed_query(analyst), analyst.peer, query=QUERY + b" ")


def test_refusals_leave_the_nonce_unused(analyst: Analyst) -> None:
    """A request refused for its target does not burn its nonce in the replay guard."""
    guard = ReplayGuard()
    signed = signed_query(analyst)
    with pytest.raises(QueryHashMismatch):
        admit(signed, analyst.peer, guard=guard, query=b"other")
    assert guard.remembered_count() == 0


def test_replay_guard_forgets_nonces_once_they_could_no_longer_be_fresh(analyst: Analyst) -> None:
    guard = ReplayGuard()
    envelope = RequestEnvelope.from_bytes(signed_query(analyst).envelope_bytes)
    guard.check_and_remember(envelope, NOW)
    guard.check_and_remember(
        dataclasses.replace(envelope, nonce="0" * 32), NOW + MAX_CLOCK_SKEW_SECONDS + 1
    )
    assert guard.remembered_count() == 1


@pytest.mark.parametrize(
    "envelope_bytes",
    [
        b"not json",
        b"[]",
        b'{"purpose":"something-else"}',
        b'{"audience":"county-a","purpose":"npcs.v1.QueryRequest"}',
    ],
)
def test_malformed_envelopes_are_refused(envelope_bytes: bytes) -> None:
    with pytest.raises(MalformedRequest):
        RequestEnvelope.from_bytes(envelope_bytes)


def test_non_canonical_encoding_is_refused(analyst: Analyst) -> None:
    canonical = signed_query(analyst).envelope_bytes
    pretty = json.dumps(json.loads(canonical), indent=1).encode()
    with pytest.raises(MalformedRequest, match="canonically"):
        RequestEnvelope.from_bytes(pretty)


def test_boolean_cost_is_not_an_integer() -> None:
    with pytest.raises(MalformedRequest, match="cost_rho_units"):
        RequestEnvelope(
            audience="county-a",
            query_id="q",
            query_hash=query_hash(QUERY),
            cost_rho_units=True,
            issued_at=NOW,
            nonce="ab" * 16,
        )
