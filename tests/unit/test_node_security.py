"""Node authorisation from the TLS AuthContext, and loading the node's TLS files."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.ca import CertificateAuthority, init_ca, issue_person_credentials
from kernel.identity import Identity, certificate_fingerprint
from kernel.keyfiles import load_certificate
from node.layout import NodePaths
from node.provision import init_node_folder
from node.security import (
    ANALYST_ROLES,
    AUDITOR_ROLES,
    MissingCredentialsError,
    PermissionDenied,
    Unauthenticated,
    authorise_caller,
    load_server_credentials,
)
from node.settings import NodeSettings


def auth_context_for(cert_pem: bytes) -> dict[str, list[bytes]]:
    return {"x509_pem_cert": [cert_pem], "transport_security_type": [b"ssl"]}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """PEM certificates of demo's analysts alice and bob, auditor aud, and other's analyst."""
    root = tmp_path_factory.mktemp("pki")
    pems: dict[str, bytes] = {}
    for partnership in ("demo", "other"):
        init_ca(root / partnership, partnership)
    demo = CertificateAuthority.load(root / "demo")
    other = CertificateAuthority.load(root / "other")
    for key, authority, role, name in [
        ("alice", demo, "analyst", "alice"),
        ("bob", demo, "analyst", "bob"),
        ("aud", demo, "auditor", "aud"),
        ("stranger", other, "analyst", "alice"),
    ]:
        issue_person_credentials(authority, role=role, name=name, out_dir=root / key)  # type: ignore[arg-type]
        pems[key] = (root / key / "tls.crt").read_bytes()
    return pems


SETTINGS = NodeSettings(name="county-a", partnership="demo", allowed_analysts=["alice"])


def test_allowed_analyst_is_authorised_for_queries(certs: dict[str, bytes]) -> None:
    peer = authorise_caller(auth_context_for(certs["alice"]), SETTINGS, ANALYST_ROLES)
    assert peer.identity == Identity("demo", "analyst", "alice")
    assert peer.signing_key_fingerprint is not None


def test_auditor_is_authorised_for_ledger_reads_but_not_queries(certs: dict[str, bytes]) -> None:
    assert authorise_caller(
        auth_context_for(certs["aud"]), SETTINGS, AUDITOR_ROLES
    ).identity.role == ("auditor")
    with pytest.raises(PermissionDenied, match="this call is for: analyst"):
        authorise_caller(auth_context_for(certs["aud"]), SETTINGS, ANALYST_ROLES)


def test_analyst_not_in_allowed_analysts_is_denied(certs: dict[str, bytes]) -> None:
    with pytest.raises(PermissionDenied, match="'bob' is not in this node's allowed_analysts"):
        authorise_caller(auth_context_for(certs["bob"]), SETTINGS, ANALYST_ROLES)


def test_member_of_another_partnership_is_denied(certs: dict[str, bytes]) -> None:
    with pytest.raises(PermissionDenied, match="partnership 'other'"):
        authorise_caller(auth_context_for(certs["stranger"]), SETTINGS, ANALYST_ROLES)


def test_revoked_certificate_is_denied_in_openssl_fingerprint_format(
    certs: dict[str, bytes],
) -> None:
    fingerprint = certificate_fingerprint(load_certificate(certs["alice"]))
    openssl_style = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    settings = SETTINGS.model_copy(update={"revoked_fingerprints": [openssl_style]})
    with pytest.raises(PermissionDenied, match="revoked"):
        authorise_caller(auth_context_for(certs["alice"]), settings, ANALYST_ROLES)


def test_connection_without_client_certificate_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="no client certificate"):
        authorise_caller({"transport_security_type": [b"ssl"]}, SETTINGS, ANALYST_ROLES)
    assert Unauthenticated.grpc_status == "UNAUTHENTICATED"
    assert PermissionDenied.grpc_status == "PERMISSION_DENIED"


def test_server_credentials_missing_before_install_cert_lists_what_is_missing(
    tmp_path: Path,
) -> None:
    paths = init_node_folder(tmp_path / "node", name="county-a", partnership="demo")
    with pytest.raises(MissingCredentialsError) as raised:
        load_server_credentials(paths)
    message = str(raised.value)
    assert f"{paths.tls_cert}: TLS certificate" in message
    assert f"{paths.ca_cert}: partnership CA certificate" in message
    assert f"{paths.tls_key}:" not in message  # init made the key; only certificates lack
    assert "npcs-node install-cert" in message


def test_server_credentials_are_the_installed_pem_files(tmp_path: Path) -> None:
    paths = NodePaths(tmp_path)
    paths.keys_dir.mkdir()
    for path, content in [(paths.tls_key, b"K"), (paths.tls_cert, b"C"), (paths.ca_cert, b"A")]:
        path.write_bytes(content)
    assert load_server_credentials(paths) == (b"K", b"C", b"A")
