"""Identity URIs, certificate identities and AuthContext extraction (real certificates)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from coordinator.ca import CertificateAuthority, init_ca, issue_person_credentials
from kernel.identity import (
    Identity,
    IdentityError,
    bound_signing_key_fingerprint,
    certificate_fingerprint,
    identity_from_certificate,
    normalise_fingerprint,
    parse_identity_uri,
)
from kernel.keyfiles import (
    KeyFileError,
    build_csr,
    generate_tls_key,
    load_certificate,
    load_certificate_file,
    load_ec_private_key,
    load_ed25519_private_key,
)
from node.peer import identity_from_auth_context, peer_from_auth_context
from privacy.tlog import key_fingerprint


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    root = tmp_path_factory.mktemp("ca")
    init_ca(root, "demo")
    return CertificateAuthority.load(root)


def test_identity_uri_round_trips() -> None:
    identity = Identity(partnership="demo", role="analyst", name="alice")
    assert identity.uri == "npcs://demo/analyst/alice"
    assert parse_identity_uri(identity.uri) == identity
    assert Identity.parse(str(identity)) == identity


@pytest.mark.parametrize(
    "uri",
    [
        "https://demo/analyst/alice",
        "npcs://demo/analyst",
        "npcs://demo/analyst/alice/extra",
        "npcs://demo/admin/alice",
        "npcs://demo/analyst/",
        "npcs://de mo/analyst/alice",
        "npcs://demo/analyst/-alice",
    ],
)
def test_malformed_identity_uris_are_rejected(uri: str) -> None:
    with pytest.raises(IdentityError):
        parse_identity_uri(uri)


def test_certificate_names_its_identity_and_fingerprint_is_sha256_of_der(
    authority: CertificateAuthority,
) -> None:
    csr = build_csr(generate_tls_key(), Identity("demo", "node", "county-a"))
    issued = authority.sign_csr(csr, role="node", name="county-a")
    der = issued.certificate.public_bytes(serialization.Encoding.DER)
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)

    assert identity_from_certificate(load_certificate(der)) == Identity("demo", "node", "county-a")
    assert identity_from_certificate(load_certificate(pem)).name == "county-a"
    assert certificate_fingerprint(issued.certificate) == hashlib.sha256(der).hexdigest()
    assert bound_signing_key_fingerprint(issued.certificate) is None


def test_certificate_without_npcs_identity_is_rejected(authority: CertificateAuthority) -> None:
    """The CA certificate itself names no member, so it cannot be used as an identity."""
    with pytest.raises(IdentityError, match="exactly one npcs:// identity"):
        identity_from_certificate(authority.certificate)


def test_identity_and_signing_key_come_from_the_auth_context(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    issue_person_credentials(authority, role="analyst", name="alice", out_dir=tmp_path)
    cert_pem = (tmp_path / "tls.crt").read_bytes()
    auth_context = {
        "x509_pem_cert": [cert_pem],
        "transport_security_type": [b"ssl"],
        "x509_common_name": [b"alice"],
    }
    signing_key = load_ed25519_private_key(tmp_path / "signing.key")

    peer = peer_from_auth_context(auth_context)

    assert identity_from_auth_context(auth_context) == Identity("demo", "analyst", "alice")
    assert peer.signing_key_fingerprint == key_fingerprint(signing_key.public_key())
    assert peer.certificate_fingerprint == certificate_fingerprint(load_certificate(cert_pem))


@pytest.mark.parametrize(
    ("auth_context", "message"),
    [
        ({}, "not protected by TLS"),
        ({"transport_security_type": [b"insecure"]}, "not protected by TLS"),
        ({"transport_security_type": [b"ssl"]}, "no client certificate"),
        ({"transport_security_type": [b"ssl"], "x509_pem_cert": [b"garbage"]}, "not a valid"),
    ],
)
def test_auth_context_without_a_usable_certificate_is_rejected(
    auth_context: dict[str, list[bytes]], message: str
) -> None:
    with pytest.raises((IdentityError, KeyFileError), match=message):
        identity_from_auth_context(auth_context)


def test_openssl_style_fingerprints_normalise() -> None:
    assert normalise_fingerprint(" AB:cd:01 ") == "abcd01"


def test_the_whole_openssl_fingerprint_line_normalises_to_its_digits() -> None:
    assert normalise_fingerprint("sha256 Fingerprint=AB:CD:01") == "abcd01"


def test_key_loaders_name_the_file_and_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(KeyFileError, match=r"nope\.key does not exist"):
        load_ec_private_key(missing)
    junk = tmp_path / "junk.crt"
    junk.write_bytes(b"not a certificate")
    with pytest.raises(KeyFileError, match=r"junk\.crt is not a valid X.509 certificate"):
        load_certificate_file(junk)
    ed_key = tmp_path / "signing.key"
    issue_dir = tmp_path / "alice"
    init_ca(tmp_path / "ca", "demo")
    issue_person_credentials(
        CertificateAuthority.load(tmp_path / "ca"), role="auditor", name="aud", out_dir=issue_dir
    )
    ed_key.write_bytes((issue_dir / "signing.key").read_bytes())
    with pytest.raises(KeyFileError, match="not an ECDSA P-256 key"):
        load_ec_private_key(ed_key)
    with pytest.raises(KeyFileError, match="not an Ed25519 private key"):
        load_ed25519_private_key(issue_dir / "tls.key")
