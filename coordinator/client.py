"""A client for one node: mTLS channel, deadlines, signed requests, verified receipts.

Every call carries a deadline. Queries are signed: the analyst's Ed25519 key signs an
envelope naming this node, the query hash and the cost the analyst authorises (taken
from Preview), so a node can prove each charge was asked for. Answers come with a
ledger receipt, verified here against the node's ledger key whose fingerprint is
pinned in partnership.toml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.errors import NodeCallError, explain_rpc_error
from coordinator.partnership import IdentityFiles, NodeEntry
from kernel.identity import load_ed25519_private_key, read_file
from kernel.signing import new_envelope, sign_request
from npcs import wire
from npcs.transport import CLIENT_OPTIONS
from npcs.v1 import node_pb2 as pb
from npcs.v1 import node_pb2_grpc as pb_grpc
from privacy.ledger import entry_from_canonical_bytes
from privacy.query import QuerySpec
from privacy.tlog import key_fingerprint, public_key_from_pem

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

    @classmethod
    def load(cls, files: IdentityFiles) -> ClientCredentials:
        return cls(
            ca_pem=read_file(files.ca_certificate, "CA certificate"),
            certificate_pem=read_file(files.certificate, "certificate"),
            tls_key_pem=read_file(files.tls_key, "TLS key"),
            signing_key=load_ed25519_private_key(files.signing_key),
        )


@dataclass(frozen=True)
class ReceiptCheck:
    verified: bool
    problem: str | None = None


class NodeClient:
    """Calls to one node over one mTLS channel. Use as a context manager."""

    def __init__(
        self,
        entry: NodeEntry,
        credentials: ClientCredentials,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor[Any, Any]] = (),
    ) -> None:
        self.entry = entry
        self.timeout = timeout
        self._credentials = credentials
        channel_credentials = grpc.ssl_channel_credentials(
            root_certificates=credentials.ca_pem,
            private_key=credentials.tls_key_pem,
            certificate_chain=credentials.certificate_pem,
        )
        self._channel = grpc.secure_channel(
            entry.address, channel_credentials, options=list(CLIENT_OPTIONS)
        )
        channel: grpc.Channel = self._channel
        if interceptors:
            channel = grpc.intercept_channel(self._channel, *interceptors)
        self._stub = pb_grpc.NodeStub(channel)

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: object) -> object:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise NodeCallError(
                explain_rpc_error(error, address=self.entry.address, timeout=self.timeout)
            ) from error

    def describe(self) -> wire.NodeDescription:
        response = self._call("Describe", pb.DescribeRequest())
        assert isinstance(response, pb.DescribeResponse)
        return wire.describe_from_proto(response)

    def preview(self, spec: QuerySpec) -> wire.PreviewResult:
        response = self._call("Preview", pb.PreviewRequest(query=wire.query_to_proto(spec)))
        assert isinstance(response, pb.PreviewResponse)
        return wire.preview_from_proto(response)

    def query(self, spec: QuerySpec, cost_units: int) -> wire.QueryAnswer:
        """One signed Query. A retry calls this again with the same spec (same query_id):
        a fresh signature, but the node answers from its ledger without a new charge."""
        canonical = wire.normalize_spec(spec)
        envelope = new_envelope(
            audience=self.entry.name,
            query_id=str(canonical.query_id),
            canonical_query=canonical.canonical_bytes(),
            cost_rho_units=cost_units,
        )
        signed = sign_request(envelope, self._credentials.signing_key)
        response = self._call("Query", wire.query_request_to_proto(canonical, signed))
        assert isinstance(response, pb.QueryResponse)
        return wire.query_response_from_proto(response)

    def get_checkpoint(self) -> wire.WireCheckpoint:
        response = self._call("GetCheckpoint", pb.GetCheckpointRequest())
        assert isinstance(response, pb.GetCheckpointResponse)
        return wire.checkpoint_from_proto(response.checkpoint)


def pinned_ledger_key(description: wire.NodeDescription, entry: NodeEntry) -> Ed25519PublicKey:
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
    answer: wire.QueryAnswer,
    *,
    entry: NodeEntry,
    ledger_key: Ed25519PublicKey | None,
    query_id: str,
) -> ReceiptCheck:
    """Does the receipt prove this release is recorded in the node's signed ledger?"""
    if ledger_key is None:
        return ReceiptCheck(False, "no ledger key matching the pinned fingerprint")
    if answer.checkpoint.key_fingerprint not in ("", entry.ledger_key_fingerprint):
        return ReceiptCheck(False, "checkpoint names a ledger key other than the pinned one")
    if not answer.verify(ledger_key):
        return ReceiptCheck(
            False,
            "checkpoint signature, recorded answer or inclusion proof does not check out",
        )
    try:
        recorded = entry_from_canonical_bytes(answer.leaf_data)
    except (ValueError, TypeError, KeyError):
        return ReceiptCheck(False, "the recorded ledger entry cannot be read")
    if recorded.query_id != query_id:
        return ReceiptCheck(False, f"the ledger entry records query {recorded.query_id}")
    return ReceiptCheck(True)
