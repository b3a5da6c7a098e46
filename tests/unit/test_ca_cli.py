"""The PKI command line: `npcs ca init/sign/issue` and `npcs-node init/install-cert`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from coordinator.cli import cli as npcs
from kernel.identity import Identity, bound_signing_key_fingerprint, identity_from_certificate
from kernel.keyfiles import (
    load_certificate_file,
    load_ed25519_private_key,
    load_ed25519_public_key,
)
from node.cli import cli as npcs_node
from node.settings import load_settings
from privacy.tlog import key_fingerprint


def run(group: object, *args: str | Path) -> Result:
    return CliRunner().invoke(group, [str(arg) for arg in args])  # type: ignore[arg-type]


def ok(group: object, *args: str | Path) -> Result:
    result = run(group, *args)
    assert result.exit_code == 0, result.output
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA for partnership `demo` and an initialised node `county-a` (no certificate yet)."""
    ok(npcs, "ca", "init", tmp_path / "ca", "--partnership", "demo")
    ok(npcs_node, "init", tmp_path / "node", "--name", "county-a", "--partnership", "demo")
    return tmp_path


def test_ca_init_node_init_sign_install_happy_path(pki: Path) -> None:
    signed = ok(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "node/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-a",
        "--out",
        pki / "county-a.crt",
        "--dns",
        "node.example.org",
    )
    assert "npcs://demo/node/county-a" in signed.output

    installed = ok(
        npcs_node, "install-cert", pki / "node", pki / "county-a.crt", "--ca", pki / "ca/ca.crt"
    )

    assert "Installed" in installed.output
    certificate = load_certificate_file(pki / "node/keys/tls.crt")
    assert identity_from_certificate(certificate) == Identity("demo", "node", "county-a")
    assert (pki / "node/keys/ca.crt").read_bytes() == (pki / "ca/ca.crt").read_bytes()
    settings = load_settings(pki / "node")
    assert (settings.name, settings.partnership, settings.allowed_analysts) == (
        "county-a",
        "demo",
        [],
    )


def test_node_init_makes_the_documented_layout_with_private_modes(pki: Path) -> None:
    keys = pki / "node/keys"
    for folder in ("data", "ledger", "keys"):
        assert (pki / "node" / folder).is_dir()
    assert mode(keys / "tls.key") == 0o600
    assert mode(keys / "ledger.key") == 0o600
    assert mode(pki / "ca/ca.key") == 0o600
    ledger_key = load_ed25519_private_key(keys / "ledger.key")
    assert load_ed25519_public_key(keys / "ledger.pub") == ledger_key.public_key()
    assert b"BEGIN CERTIFICATE REQUEST" in (keys / "tls.csr").read_bytes()


def test_ca_issue_binds_the_signing_key_and_keeps_keys_private(pki: Path) -> None:
    result = ok(
        npcs,
        "ca",
        "issue",
        pki / "ca",
        "--role",
        "analyst",
        "--name",
        "alice",
        "--out",
        pki / "alice",
    )

    assert "npcs://demo/analyst/alice" in result.output
    assert mode(pki / "alice/tls.key") == 0o600
    assert mode(pki / "alice/signing.key") == 0o600
    certificate = load_certificate_file(pki / "alice/tls.crt")
    public_key = load_ed25519_public_key(pki / "alice/signing.pub")
    assert bound_signing_key_fingerprint(certificate) == key_fingerprint(public_key)


def test_ca_sign_binds_a_given_signing_key(pki: Path) -> None:
    ok(npcs, "ca", "issue", pki / "ca", "--role", "auditor", "--name", "aud", "--out", pki / "aud")
    ok(npcs_node, "init", pki / "n2", "--name", "county-b", "--partnership", "demo")
    ok(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "n2/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-b",
        "--out",
        pki / "b.crt",
        "--signing-key",
        pki / "aud/signing.pub",
    )
    bound = bound_signing_key_fingerprint(load_certificate_file(pki / "b.crt"))
    assert bound == key_fingerprint(load_ed25519_public_key(pki / "aud/signing.pub"))


def test_install_cert_refuses_a_certificate_from_another_ca(pki: Path) -> None:
    ok(npcs, "ca", "init", pki / "rogue", "--partnership", "demo")
    ok(
        npcs,
        "ca",
        "sign",
        pki / "rogue",
        pki / "node/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-a",
        "--out",
        pki / "rogue.crt",
    )
    result = run(
        npcs_node, "install-cert", pki / "node", pki / "rogue.crt", "--ca", pki / "ca/ca.crt"
    )
    assert result.exit_code != 0
    assert "does not verify with the CA" in result.output
    assert not (pki / "node/keys/tls.crt").exists()


def test_install_cert_refuses_a_certificate_for_another_node_name(pki: Path) -> None:
    result = run(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "node/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-z",
        "--out",
        pki / "z.crt",
    )
    assert result.exit_code != 0
    assert "asks for npcs://demo/node/county-a" in result.output  # the CA notices first

    ok(npcs_node, "init", pki / "z", "--name", "county-z", "--partnership", "demo")
    ok(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "z/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-z",
        "--out",
        pki / "z.crt",
    )
    # Pretend node county-a's operator got county-z's key and certificate.
    (pki / "node/keys/tls.key").unlink()
    (pki / "node/keys/tls.key").write_bytes((pki / "z/keys/tls.key").read_bytes())
    result = run(npcs_node, "install-cert", pki / "node", pki / "z.crt", "--ca", pki / "ca/ca.crt")
    assert result.exit_code != 0
    assert "names npcs://demo/node/county-z, but this node is npcs://demo/node/county-a" in (
        result.output
    )


def test_install_cert_refuses_a_certificate_not_matching_the_node_key(pki: Path) -> None:
    ok(npcs_node, "init", pki / "other", "--name", "county-a", "--partnership", "demo")
    ok(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "other/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-a",
        "--out",
        pki / "other.crt",
    )
    result = run(
        npcs_node, "install-cert", pki / "node", pki / "other.crt", "--ca", pki / "ca/ca.crt"
    )
    assert result.exit_code != 0
    assert "not for this node's key" in result.output


def test_install_cert_refuses_a_non_ca_as_the_ca(pki: Path) -> None:
    ok(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "node/keys/tls.csr",
        "--role",
        "node",
        "--name",
        "county-a",
        "--out",
        pki / "a.crt",
    )
    result = run(npcs_node, "install-cert", pki / "node", pki / "a.crt", "--ca", pki / "a.crt")
    assert result.exit_code != 0
    assert "is not a CA certificate" in result.output


def test_ca_sign_refuses_a_tampered_csr(pki: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    csr = x509.load_pem_x509_csr((pki / "node/keys/tls.csr").read_bytes())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # flip a bit of the signature
    (pki / "bad.csr").write_bytes(bytes(der))
    result = run(
        npcs,
        "ca",
        "sign",
        pki / "ca",
        pki / "bad.csr",
        "--role",
        "node",
        "--name",
        "county-a",
        "--out",
        pki / "bad.crt",
    )
    assert result.exit_code != 0
    assert "signature does not verify" in result.output
    assert not (pki / "bad.crt").exists()


def test_commands_refuse_to_overwrite_existing_keys(pki: Path) -> None:
    ca_key = (pki / "ca/ca.key").read_bytes()
    again = run(npcs, "ca", "init", pki / "ca", "--partnership", "demo")
    assert again.exit_code != 0
    assert "refusing to overwrite" in again.output
    assert (pki / "ca/ca.key").read_bytes() == ca_key

    ok(
        npcs,
        "ca",
        "issue",
        pki / "ca",
        "--role",
        "analyst",
        "--name",
        "alice",
        "--out",
        pki / "alice",
    )
    alice_key = (pki / "alice/tls.key").read_bytes()
    reissue = run(
        npcs,
        "ca",
        "issue",
        pki / "ca",
        "--role",
        "analyst",
        "--name",
        "alice",
        "--out",
        pki / "alice",
    )
    assert reissue.exit_code != 0
    assert "refusing to overwrite" in reissue.output
    assert (pki / "alice/tls.key").read_bytes() == alice_key

    node_again = run(npcs_node, "init", pki / "node", "--name", "county-a", "--partnership", "demo")
    assert node_again.exit_code != 0
    assert "not an empty folder" in node_again.output


def test_invalid_names_are_refused_with_the_rule(tmp_path: Path) -> None:
    result = run(npcs_node, "init", tmp_path / "n", "--name", "county a", "--partnership", "demo")
    assert result.exit_code != 0
    assert "is not a valid name" in result.output
    assert not (tmp_path / "n").exists()
