"""mTLS with certificates from `npcs ca`: who gets through the handshake, and who they are.

A real gRPC server on 127.0.0.1 (port 0) requires client certificates from the
partnership CA, exactly as `npcs-node serve` will; its one method reports the caller's
identity as `node.security.authorise_caller` reads it from the AuthContext.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest

from coordinator.ca import (
    CertificateAuthority,
    CredentialPaths,
    init_ca,
    issue_person_credentials,
    load_csr,
)
from kernel.identity import Identity
from kernel.keyfiles import certificate_pem
from node.layout import NodePaths
from node.provision import init_node_folder, install_certificate
from node.security import (
    ANALYST_ROLES,
    AccessDeniedError,
    authorise_caller,
    load_server_credentials,
)
from node.settings import load_settings

METHOD = "/npcs.test.Probe/WhoAmI"
DEADLINE_SECONDS = 10


@dataclass(frozen=True)
class Partnership:
    node: NodePaths
    alice: CredentialPaths
    bob: CredentialPaths
    stranger: CredentialPaths


@pytest.fixture(scope="module")
def partnership(tmp_path_factory: pytest.TempPathFactory) -> Partnership:
    """CA `demo`, node county-a with an installed cert, analyst alice; and a rogue CA's analyst."""
    root = tmp_path_factory.mktemp("mtls")
    init_ca(root / "ca", "demo")
    authority = CertificateAuthority.load(root / "ca")
    node = init_node_folder(root / "node", name="county-a", partnership="demo")
    issued = authority.sign_csr(load_csr(node.tls_csr), role="node", name="county-a")
    (root / "node.crt").write_bytes(certificate_pem(issued.certificate))
    install_certificate(node.root, root / "node.crt", root / "ca" / "ca.crt")
    settings_text = node.settings_file.read_text().replace(
        "allowed_analysts = []", 'allowed_analysts = ["alice"]'
    )
    node.settings_file.write_text(settings_text)
    issue_person_credentials(authority, role="analyst", name="alice", out_dir=root / "alice")
    issue_person_credentials(authority, role="analyst", name="bob", out_dir=root / "bob")

    init_ca(root / "rogue-ca", "demo")
    rogue = CertificateAuthority.load(root / "rogue-ca")
    issue_person_credentials(rogue, role="analyst", name="alice", out_dir=root / "stranger")
    return Partnership(
        node=node,
        alice=CredentialPaths(root / "alice"),
        bob=CredentialPaths(root / "bob"),
        stranger=CredentialPaths(root / "stranger"),
    )


@pytest.fixture(scope="module")
def server_port(partnership: Partnership) -> Iterator[int]:
    settings = load_settings(partnership.node.root)
    key_pem, cert_pem, ca_pem = load_server_credentials(partnership.node)

    def who_am_i(_request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            peer = authorise_caller(context.auth_context(), settings, ANALYST_ROLES)
        except AccessDeniedError as exc:
            context.abort(getattr(grpc.StatusCode, exc.grpc_status), str(exc))
        return peer.identity.uri.encode()

    handler = grpc.method_handlers_generic_handler(
        "npcs.test.Probe", {"WhoAmI": grpc.unary_unary_rpc_method_handler(who_am_i)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    credentials = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None).wait()


def call_who_am_i(port: int, ca_pem: bytes, client: CredentialPaths | None) -> bytes:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_pem,
        private_key=client.tls_key.read_bytes() if client else None,
        certificate_chain=client.tls_cert.read_bytes() if client else None,
    )
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        who_am_i = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        response: bytes = who_am_i(b"", timeout=DEADLINE_SECONDS)
        return response


def test_analyst_with_partnership_certificate_is_identified(
    partnership: Partnership, server_port: int
) -> None:
    response = call_who_am_i(server_port, partnership.alice.ca_cert.read_bytes(), partnership.alice)
    assert Identity.parse(response.decode()) == Identity("demo", "analyst", "alice")


def test_client_certificate_from_another_ca_fails_the_handshake(
    partnership: Partnership, server_port: int
) -> None:
    """Same partnership name and person name, but not signed by this partnership's CA."""
    with pytest.raises(grpc.RpcError) as raised:
        call_who_am_i(server_port, partnership.alice.ca_cert.read_bytes(), partnership.stranger)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_without_certificate_fails_the_handshake(
    partnership: Partnership, server_port: int
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        call_who_am_i(server_port, partnership.alice.ca_cert.read_bytes(), None)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_refuses_a_server_from_another_ca(
    partnership: Partnership, server_port: int
) -> None:
    """The analyst's client trusts only its partnership CA, so a rogue server is refused too."""
    with pytest.raises(grpc.RpcError) as raised:
        call_who_am_i(server_port, partnership.stranger.ca_cert.read_bytes(), partnership.alice)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_partnership_analyst_not_allowed_by_the_node_is_permission_denied(
    partnership: Partnership, server_port: int
) -> None:
    """bob passes the handshake (right CA) but node.toml does not list him."""
    with pytest.raises(grpc.RpcError) as raised:
        call_who_am_i(server_port, partnership.bob.ca_cert.read_bytes(), partnership.bob)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "allowed_analysts" in (raised.value.details() or "")
