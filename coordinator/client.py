"""A client for one node: mTLS channel, deadlines, signed requests, verified receipts.

Every call carries a deadline and returns domain values (never protobuf). Queries are
signed: the analyst's Ed25519 key signs an envelope naming this node, the query hash
and the cost the analyst authorises (taken from Preview), so a node can prove each
charge was asked for. Answers come with a ledger receipt, verified here against the
node's ledger key whose fingerprint is pinned in partnership.toml. Auditors use the
same client for the ledger itself: its entries and consistency proofs.

Describe, Query and GetCheckpoint send `remembered_size`, the size of the node's
checkpoint the caller remembers (`coordinator.checkpoints`); the node answers with a
consistency proof from it, which `coordinator.checkpoints.check_continuity` checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.errors import NodeCallError, explain_rpc_error
from coordinator.partnership import IdentityFiles, NodeEntry
from kernel.keyfiles import load_ed25519_private_key, public_key_from_pem, read_file
from kernel.messages import (
    ConsistencyFromRemembered,
    NodeDescription,
    PreviewResult,
    PublishedCheckpoint,
    QueryAnswer,
)
from kernel.signing import new_envelope, sign_request
from npcs.errors import WireError
from npcs.serde_ledger import (
    checkpoint_from_proto,
    consistency_from_proto,
    ledger_entry_from_proto,
    query_response_from_proto,
)
from npcs.serde_node import describe_from_proto
from npcs.serde_query import (
    normalize_spec,
    preview_from_proto,
    query_request_to_proto,
    query_to_proto,
)
from npcs.transport import CLIENT_OPTIONS, SERVICE_NAME
from npcs.v1 import node_pb2 as pb
from npcs.v1 import node_pb2_grpc as pb_grpc
from privacy.ledger.entry import LedgerEntry
from privacy.query import QuerySpec
from privacy.tlog import key_fingerprint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ClientCredentials:
    """The analyst's credentials, read once per command."""

    ca_pem: bytes
    certificate_pem: bytes
    tls_key_pem: bytes
    signing_key: Ed25519PrivateKey

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """gRPC's mTLS credentials: the partnership CA, this certificate and its key."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.tls_key_pem,
            certificate_chain=self.certificate_pem,
        )

    @classmethod
    def load(cls, files: IdentityFiles) -> ClientCredentials:
        return cls(
            ca_pem=read_file(files.ca_certificate, "CA certificate"),
            certificate_pem=read_file(files.certificate, "certificate"),
            tls_key_pem=read_file(files.tls_key, "TLS key"),
            signing_key=load_ed25519_private_key(files.signing_key),
        )


class UnreadableEntryError(Exception):
    """A ledger entry the node served cannot be read, or disagrees with its own leaf data."""

    def __init__(self, seq: int, error: WireError) -> None:
        super().__init__(str(error))
        self.seq = seq


@dataclass(frozen=True)
class ReceiptCheck:
    verified: bool
    problem: str | None = None


@dataclass(frozen=True)
class NodeChannel:
    """An open mTLS channel to one node and the stub over it (a stub costs more to build
    than a call's own Python work: a kept channel keeps its stub)."""

    channel: grpc.Channel
    stub: pb_grpc.NodeStub

    @classmethod
    def open(cls, address: str, credentials: grpc.ChannelCredentials) -> NodeChannel:
        channel = grpc.secure_channel(address, credentials, options=list(CLIENT_OPTIONS))
        return cls(channel, pb_grpc.NodeStub(channel))


class NodeClient:
    """Calls to one node over one mTLS channel. Use as a context manager."""

    def __init__(
        self,
        entry: NodeEntry,
        credentials: ClientCredentials,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor[Any, Any]] = (),
        opened: NodeChannel | None = None,
    ) -> None:
        """`opened`: a channel to the node that the caller keeps (and closes); without
        one the client opens its own and closes it on `close`."""
        self.entry = entry
        self.timeout = timeout
        self._credentials = credentials
        self._owns_channel = opened is None
        if opened is None:
            opened = NodeChannel.open(entry.address, credentials.channel_credentials())
        self._channel = opened.channel
        self._stub = opened.stub
        if interceptors:
            self._stub = pb_grpc.NodeStub(grpc.intercept_channel(self._channel, *interceptors))

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def _call(self, method: str, request: object) -> object:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise NodeCallError(
                explain_rpc_error(error, address=self.entry.address, timeout=self.timeout)
            ) from error

    def serving(self) -> bool:
        """The node's own verdict on its health (grpc.health.v1): False when NOT_SERVING,
        as after a failed ledger self-check."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=self.timeout
            )
        except grpc.RpcError as error:
            raise NodeCallError(
                explain_rpc_error(error, address=self.entry.address, timeout=self.timeout)
            ) from error
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def describe(
        self, remembered_size: int = 0, *, unit_kind_epsilon: bool = False
    ) -> NodeDescription:
        """`unit_kind_epsilon`: also the epsilon of each unit kind's budget (slower)."""
        request = pb.DescribeRequest(
            remembered_size=remembered_size, unit_kind_epsilon=unit_kind_epsilon
        )
        response = self._call("Describe", request)
        assert isinstance(response, pb.DescribeResponse)
        return describe_from_proto(response)

    def preview(self, spec: QuerySpec) -> PreviewResult:
        response = self._call("Preview", pb.PreviewRequest(query=query_to_proto(spec)))
        assert isinstance(response, pb.PreviewResponse)
        return preview_from_proto(response)

    def describe_and_preview(
        self, spec: QuerySpec, remembered_size: int = 0
    ) -> tuple[NodeDescription, PreviewResult]:
        """Describe and Preview in one call: the Preview asks the node to describe itself
        too. A node that predates this answers the Preview alone; it is then asked
        Describe (a second round trip, for such nodes only)."""
        request = pb.PreviewRequest(
            query=query_to_proto(spec), describe=True, remembered_size=remembered_size
        )
        previewed = self._call("Preview", request)
        assert isinstance(previewed, pb.PreviewResponse)
        preview = preview_from_proto(previewed)
        if previewed.HasField("description"):
            return describe_from_proto(previewed.description), preview
        return self.describe(remembered_size), preview

    def query(self, spec: QuerySpec, cost_units: int, remembered_size: int = 0) -> QueryAnswer:
        """One signed Query. A retry calls this again with the same spec (same query_id):
        a fresh signature, but the node answers from its ledger without a new charge."""
        canonical = normalize_spec(spec)
        envelope = new_envelope(
            audience=self.entry.name,
            query_id=str(canonical.query_id),
            canonical_query=canonical.canonical_bytes(),
            cost_rho_units=cost_units,
        )
        signed = sign_request(envelope, self._credentials.signing_key)
        request = query_request_to_proto(canonical, signed)
        request.remembered_size = remembered_size
        response = self._call("Query", request)
        assert isinstance(response, pb.QueryResponse)
        return query_response_from_proto(response)

    def get_checkpoint(
        self, remembered_size: int = 0
    ) -> tuple[PublishedCheckpoint, ConsistencyFromRemembered | None]:
        """The latest signed checkpoint, with the proof that it extends the tree of
        `remembered_size` entries (None when the node gave none)."""
        response = self._call(
            "GetCheckpoint", pb.GetCheckpointRequest(remembered_size=remembered_size)
        )
        assert isinstance(response, pb.GetCheckpointResponse)
        consistency = response.consistency if response.HasField("consistency") else None
        return checkpoint_from_proto(response.checkpoint), consistency_from_proto(consistency)

    def get_ledger(self, start: int, end: int) -> tuple[list[LedgerEntry], PublishedCheckpoint]:
        """Entries from `start` (a page: the node may serve fewer than `end - start`).

        Raises UnreadableEntryError for the first entry that cannot be read.
        """
        response = self._call("GetLedger", pb.GetLedgerRequest(start=start, end=end))
        assert isinstance(response, pb.GetLedgerResponse)
        entries: list[LedgerEntry] = []
        for message in response.entries:
            try:
                entries.append(ledger_entry_from_proto(message))
            except WireError as exc:
                raise UnreadableEntryError(message.seq, exc) from exc
        return entries, checkpoint_from_proto(response.checkpoint)

    def get_consistency_proof(
        self, old_size: int, new_size: int
    ) -> tuple[list[bytes], PublishedCheckpoint]:
        """The RFC 6962 proof that the ledger at `new_size` extends the one at `old_size`."""
        response = self._call(
            "GetConsistencyProof",
            pb.GetConsistencyProofRequest(old_size=old_size, new_size=new_size),
        )
        assert isinstance(response, pb.GetConsistencyProofResponse)
        return list(response.proof), checkpoint_from_proto(response.checkpoint)


def pinned_ledger_key(description: NodeDescription, entry: NodeEntry) -> Ed25519PublicKey:
    """The ledger key the node published, if it is the one pinned in partnership.toml.

    Raises ValueError naming both fingerprints otherwise.
    """
    key = public_key_from_pem(
        description.ledger_public_key_pem.encode(), source=f"node {entry.name}'s ledger key"
    )
    fingerprint = key_fingerprint(key)
    if fingerprint != entry.ledger_key_fingerprint:
        raise ValueError(
            f"node {entry.name} presents ledger key {fingerprint[:16]}..., but "
            f"partnership.toml pins {entry.ledger_key_fingerprint[:16]}...: the node's "
            "ledger key changed or someone is impersonating it"
        )
    return key


def check_receipt(
    answer: QueryAnswer,
    *,
    entry: NodeEntry,
    ledger_key: Ed25519PublicKey | None,
    query_id: str,
    verified_checkpoint: PublishedCheckpoint | None = None,
) -> ReceiptCheck:
    """Does the receipt prove this release is recorded in the node's signed ledger?

    `verified_checkpoint`: a checkpoint whose signature under `ledger_key` the caller has
    just verified (the node's description's); a receipt with that very checkpoint (same
    body, signature and key hash: a replay, or no query in between) is not verified twice.
    """
    if ledger_key is None:
        return ReceiptCheck(False, "no ledger key matching the pinned fingerprint")
    if answer.checkpoint.key_fingerprint not in ("", entry.ledger_key_fingerprint):
        return ReceiptCheck(False, "checkpoint names a ledger key other than the pinned one")
    recorded = answer.verified_entry(
        ledger_key, signature_checked=_same_checkpoint(answer.checkpoint, verified_checkpoint)
    )
    if recorded is None:
        return ReceiptCheck(
            False,
            "checkpoint signature, recorded answer or inclusion proof does not check out",
        )
    if recorded.query_id != query_id:
        return ReceiptCheck(False, f"the ledger entry records query {recorded.query_id}")
    return ReceiptCheck(True)


def _same_checkpoint(checkpoint: PublishedCheckpoint, other: PublishedCheckpoint | None) -> bool:
    if other is None:
        return False
    a, b = checkpoint.signed, other.signed
    return (a.checkpoint, a.signature, a.key_hash) == (b.checkpoint, b.signature, b.key_hash)
