"""Signed query requests: the analyst's proof that they asked for a charge.

The analyst's client signs a canonical envelope (audience node, query_id, query hash,
cost, issued-at, nonce) with an Ed25519 key whose fingerprint the partnership CA put
into the analyst's TLS certificate. The node checks, in this order:

1. the envelope parses and the signature verifies under the carried public key;
2. that key is the one bound to the caller's TLS certificate;
3. the audience is this node, the envelope's query_id is the query's own, and the
   query hash matches the query it received;
4. unless the query_id is already in the ledger (an identical retry, answered from the
   ledger without a new charge): issued-at is within 300 s of now and the nonce is new.

Step 4 is skipped for recorded query_ids because a retry after a lost reply or a node
restart must get its stored answer, and binding (step 2) already means only the
original analyst can present this signature; the ledger compares the stored query hash.
Step 3's query_id equality is what makes skipping safe: without it, an envelope naming a
recorded query_id could carry a new query past the freshness check (issue 11, defect 2).
The admitted request says whether it is such a retry, and the ledger must then answer
from the record only, never charge (`Ledger.charge_and_release(replay_only=True)`).
The node keeps the signed request in its ledger, so each charge is provably authorised.

Pure: no networking, no gRPC import.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from kernel.identity import Peer, check_fingerprint, check_name
from privacy.tlog import key_fingerprint, raw_public_key

ENVELOPE_PURPOSE = "npcs.v1.QueryRequest"
"""Domain separation: a signature over this envelope can mean nothing else."""

MAX_CLOCK_SKEW_SECONDS = 300
"""A request is fresh while |now - issued_at| <= this many seconds."""

NONCE_BYTES = 16
MAX_ENVELOPE_BYTES = 4096
ED25519_SIGNATURE_BYTES = 64
ED25519_PUBLIC_KEY_BYTES = 32


class RequestRejectedError(Exception):
    """A signed request the node must refuse; `grpc_status` names the status to return."""

    grpc_status: ClassVar[str] = "PERMISSION_DENIED"


class MalformedRequest(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "INVALID_ARGUMENT"


class BadSignature(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "UNAUTHENTICATED"


class UnboundSigningKey(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "PERMISSION_DENIED"


class WrongAudience(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "PERMISSION_DENIED"


class QueryHashMismatch(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "INVALID_ARGUMENT"


class QueryIdMismatch(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    """The envelope names another query_id than the query it was sent with."""

    grpc_status = "INVALID_ARGUMENT"


class ExpiredRequest(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "PERMISSION_DENIED"


class ReplayedRequest(RequestRejectedError):  # noqa: N818  (names fixed by the signing contract)
    grpc_status = "PERMISSION_DENIED"


def query_hash(canonical_query: bytes) -> str:
    """Hex SHA-256 of the canonical query bytes (what the envelope commits to)."""
    return hashlib.sha256(canonical_query).hexdigest()


def canonical_json(value: dict[str, Any]) -> bytes:
    """Deterministic encoding: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


@dataclass(frozen=True)
class RequestEnvelope:
    """What the analyst signs. `cost_rho_units` is micro-rho (privacy/budget.py units)."""

    audience: str
    query_id: str
    query_hash: str
    cost_rho_units: int
    issued_at: int
    nonce: str

    def __post_init__(self) -> None:
        check_name(self.audience, "audience node")
        if not self.query_id or len(self.query_id) > 128:
            raise MalformedRequest("query_id must be 1-128 characters")
        check_fingerprint(self.query_hash)
        # bool is an int subclass: refuse it so `true` never means 1 micro-rho.
        if type(self.cost_rho_units) is not int or self.cost_rho_units < 0:
            raise MalformedRequest("cost_rho_units must be a non-negative integer")
        if type(self.issued_at) is not int:
            raise MalformedRequest("issued_at must be an integer number of unix seconds")
        if len(self.nonce) != 2 * NONCE_BYTES or not _is_lower_hex(self.nonce):
            raise MalformedRequest(f"nonce must be {NONCE_BYTES} random bytes in lowercase hex")

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "purpose": ENVELOPE_PURPOSE,
                "audience": self.audience,
                "query_id": self.query_id,
                "query_hash": self.query_hash,
                "cost_rho_units": self.cost_rho_units,
                "issued_at": self.issued_at,
                "nonce": self.nonce,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RequestEnvelope:
        """Parse canonical envelope bytes; MalformedRequest if they are anything else."""
        if len(data) > MAX_ENVELOPE_BYTES:
            raise MalformedRequest(f"request envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            fields = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedRequest("request envelope is not UTF-8 JSON") from exc
        if not isinstance(fields, dict) or fields.pop("purpose", None) != ENVELOPE_PURPOSE:
            raise MalformedRequest(f"request envelope is not a {ENVELOPE_PURPOSE} envelope")
        try:
            envelope = cls(**fields)
        except TypeError as exc:
            raise MalformedRequest(f"request envelope has the wrong fields: {exc}") from exc
        except ValueError as exc:
            raise MalformedRequest(f"request envelope is invalid: {exc}") from exc
        # Only the canonical encoding is accepted, so one request has one byte string.
        if envelope.to_bytes() != data:
            raise MalformedRequest("request envelope is not canonically encoded")
        return envelope


def _is_lower_hex(value: str) -> bool:
    return all(character in "0123456789abcdef" for character in value)


def new_envelope(
    *,
    audience: str,
    query_id: str,
    canonical_query: bytes,
    cost_rho_units: int,
    now: float | None = None,
) -> RequestEnvelope:
    """A fresh envelope for one query to one node, with a random nonce."""
    return RequestEnvelope(
        audience=audience,
        query_id=query_id,
        query_hash=query_hash(canonical_query),
        cost_rho_units=cost_rho_units,
        issued_at=int(time.time() if now is None else now),
        nonce=secrets.token_hex(NONCE_BYTES),
    )


@dataclass(frozen=True)
class SignedRequest:
    """Envelope bytes, the Ed25519 signature over them, and the raw 32-byte public key.

    The public key travels with the request so a node needs no key directory: the
    caller's certificate says which key fingerprint is allowed.
    """

    envelope_bytes: bytes
    signature: bytes
    signer_public_key: bytes

    @property
    def signer_key_fingerprint(self) -> str:
        return key_fingerprint(self.signer_public_key)


def signed_request_to_bytes(signed: SignedRequest) -> bytes:
    """How the ledger stores a signed request: canonical JSON, bytes as base64."""
    return json.dumps(
        {
            "envelope": base64.b64encode(signed.envelope_bytes).decode(),
            "signature": base64.b64encode(signed.signature).decode(),
            "public_key": base64.b64encode(signed.signer_public_key).decode(),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def signed_request_from_bytes(data: bytes) -> SignedRequest:
    """Parse a signed request as the ledger stores it (ValueError if it is not one)."""
    try:
        fields = json.loads(data)
        return SignedRequest(
            envelope_bytes=base64.b64decode(fields["envelope"], validate=True),
            signature=base64.b64decode(fields["signature"], validate=True),
            signer_public_key=base64.b64decode(fields["public_key"], validate=True),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValueError("stored signed request is not in the ledger's format") from exc


def sign_request(envelope: RequestEnvelope, key: ed25519.Ed25519PrivateKey) -> SignedRequest:
    envelope_bytes = envelope.to_bytes()
    return SignedRequest(
        envelope_bytes=envelope_bytes,
        signature=key.sign(envelope_bytes),
        signer_public_key=raw_public_key(key.public_key()),
    )


def verify_signature(signed: SignedRequest) -> RequestEnvelope:
    """Check the signature under the carried key, then parse the envelope."""
    if len(signed.signer_public_key) != ED25519_PUBLIC_KEY_BYTES:
        raise BadSignature("request signer key is not a 32-byte Ed25519 public key")
    if len(signed.signature) != ED25519_SIGNATURE_BYTES:
        raise BadSignature("request signature is not a 64-byte Ed25519 signature")
    public_key = ed25519.Ed25519PublicKey.from_public_bytes(signed.signer_public_key)
    try:
        public_key.verify(signed.signature, signed.envelope_bytes)
    except InvalidSignature as exc:
        raise BadSignature(
            "request signature does not verify: the request was altered or signed with another key"
        ) from exc
    return RequestEnvelope.from_bytes(signed.envelope_bytes)


def check_binding(signed: SignedRequest, caller: Peer) -> None:
    """The signing key must be the one the CA bound into the caller's TLS certificate."""
    if caller.signing_key_fingerprint is None:
        raise UnboundSigningKey(
            f"caller {caller.identity} has no request-signing key in its certificate: "
            "ask the CA operator for a certificate issued with `npcs ca issue`"
        )
    if signed.signer_key_fingerprint != caller.signing_key_fingerprint:
        raise UnboundSigningKey(
            f"request was signed with key {signed.signer_key_fingerprint[:16]}..., but the "
            f"certificate of {caller.identity} binds key "
            f"{caller.signing_key_fingerprint[:16]}...: sign with your own key"
        )


def check_target(
    envelope: RequestEnvelope, *, node_name: str, query_id: str, canonical_query: bytes
) -> None:
    if envelope.audience != node_name:
        raise WrongAudience(
            f"request was signed for node {envelope.audience!r}, not this node ({node_name!r})"
        )
    if envelope.query_id != query_id:
        raise QueryIdMismatch(
            f"the signed envelope names query_id {envelope.query_id!r}, but the query sent "
            f"has query_id {query_id!r}: sign the query_id of the query you send"
        )
    if envelope.query_hash != query_hash(canonical_query):
        raise QueryHashMismatch(
            f"query {envelope.query_id!r} does not match the hash in its signed envelope: "
            "sign the exact query you send"
        )


def check_fresh(envelope: RequestEnvelope, now: float) -> None:
    age = now - envelope.issued_at
    if abs(age) > MAX_CLOCK_SKEW_SECONDS:
        direction = "old" if age > 0 else "far in the future"
        raise ExpiredRequest(
            f"request {envelope.query_id!r} was issued {abs(int(age))} s {direction}; requests "
            f"are accepted within {MAX_CLOCK_SKEW_SECONDS} s of the node's clock: check the "
            "clocks and sign again"
        )


class ReplayGuard:
    """Remembers nonces for as long as their requests could still pass the freshness check.

    In memory: after a restart, old nonces are forgotten, but a request older than the
    freshness window is refused anyway, and a retry of a recorded query_id is answered
    from the ledger without a new charge. Thread-safe (gRPC serves from a thread pool).
    """

    def __init__(self, window_seconds: int = MAX_CLOCK_SKEW_SECONDS) -> None:
        self._window = window_seconds
        self._expiry_by_nonce: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_and_remember(self, envelope: RequestEnvelope, now: float) -> None:
        """Raise ReplayedRequest if the nonce was seen; otherwise remember it."""
        with self._lock:
            self._forget_expired(now)
            if envelope.nonce in self._expiry_by_nonce:
                raise ReplayedRequest(
                    f"request {envelope.query_id!r} reuses a nonce already seen: each request "
                    "needs a fresh signature"
                )
            # Future-dated requests stay fresh until issued_at + window: remember until then.
            self._expiry_by_nonce[envelope.nonce] = envelope.issued_at + self._window

    def remembered_count(self) -> int:
        """How many nonces are held (not __len__: an empty guard must still be truthy)."""
        with self._lock:
            return len(self._expiry_by_nonce)

    def _forget_expired(self, now: float) -> None:
        expired = [nonce for nonce, expiry in self._expiry_by_nonce.items() if expiry < now]
        for nonce in expired:
            del self._expiry_by_nonce[nonce]


@dataclass(frozen=True)
class AdmittedRequest:
    """A request the node may act on. `is_recorded_retry`: answer from the ledger."""

    envelope: RequestEnvelope
    signed: SignedRequest
    is_recorded_retry: bool


def admit_signed_request(
    signed: SignedRequest,
    *,
    caller: Peer,
    node_name: str,
    query_id: str,
    canonical_query: bytes,
    replay_guard: ReplayGuard,
    is_recorded: Callable[[str], bool],
    now: float | None = None,
) -> AdmittedRequest:
    """Everything the Query servicer checks before charging (see the module docstring).

    `is_recorded(query_id)` asks the ledger whether this query_id already has an entry.
    For a recorded query_id the servicer must return the stored answer (and the ledger
    must refuse it if the stored query hash differs); it must never charge again.
    """
    current = time.time() if now is None else now
    envelope = verify_signature(signed)
    check_binding(signed, caller)
    check_target(envelope, node_name=node_name, query_id=query_id, canonical_query=canonical_query)
    if is_recorded(envelope.query_id):
        return AdmittedRequest(envelope=envelope, signed=signed, is_recorded_retry=True)
    check_fresh(envelope, current)
    replay_guard.check_and_remember(envelope, current)
    return AdmittedRequest(envelope=envelope, signed=signed, is_recorded_retry=False)
