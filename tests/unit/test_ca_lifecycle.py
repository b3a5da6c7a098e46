"""Certificate lifecycle at the CA: a person makes their own keys and CSR (`npcs identity
init`), the CA signs it (`npcs ca sign`), lists what it issued (`npcs ca list`) and
revokes with a signed X.509 CRL (`npcs ca revoke`). `npcs ca issue` is for demos."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from coordinator.ca_registry import crl_path
from coordinator.cli import cli as npcs
from kernel.identity import bound_signing_key_fingerprint, certificate_fingerprint
from kernel.keyfiles import load_certificate_file, load_ed25519_public_key
from privacy.tlog import key_fingerprint


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(npcs, [str(arg) for arg in args])


def ok(*args: str | Path) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def _person_signed_by_ca(tmp_path: Path) -> tuple[Path, Path]:
    ca_dir, alice = tmp_path / "ca", tmp_path / "alice"
    ok("ca", "init", ca_dir, "--partnership", "demo")
    ok("identity", "init", alice, "--partnership", "demo", "--role", "analyst", "--name", "alice")
    ok("ca", "sign", ca_dir, alice / "tls.csr", "--role", "analyst", "--name", "alice",
       "--signing-key", alice / "signing.pub", "--out", alice / "tls.crt")  # fmt: skip
    return ca_dir, alice


def test_a_person_makes_their_own_keys_and_the_ca_only_signs(tmp_path: Path) -> None:
    ca_dir, alice = _person_signed_by_ca(tmp_path)
    for key in ("tls.key", "signing.key"):
        assert stat.S_IMODE((alice / key).stat().st_mode) == 0o600
    # The CA folder holds no private key but its own.
    assert sorted(p.name for p in ca_dir.iterdir() if p.suffix == ".key") == ["ca.key"]
    certificate = load_certificate_file(alice / "tls.crt")
    signing = load_ed25519_public_key(alice / "signing.pub")
    assert bound_signing_key_fingerprint(certificate) == key_fingerprint(signing)


def test_identity_init_refuses_to_overwrite_keys(tmp_path: Path) -> None:
    args = ("identity", "init", tmp_path / "a", "--partnership", "demo", "--role", "auditor")
    ok(*args, "--name", "audrey")
    result = run(*args, "--name", "audrey")
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output


def test_ca_list_shows_what_the_ca_issued_and_revoke_publishes_a_signed_crl(
    tmp_path: Path,
) -> None:
    ca_dir, alice = _person_signed_by_ca(tmp_path)
    certificate = load_certificate_file(alice / "tls.crt")
    listed = json.loads(ok("ca", "list", ca_dir, "--format", "json").output)
    assert [(c["identity"], c["status"]) for c in listed["certificates"]] == [
        ("npcs://demo/analyst/alice", "valid")
    ]
    assert listed["certificates"][0]["sha256"] == certificate_fingerprint(certificate)

    revoked = ok("ca", "revoke", ca_dir, certificate_fingerprint(certificate), "--reason", "left")
    assert "Revoked npcs://demo/analyst/alice" in revoked.output
    crl = x509.load_pem_x509_crl(crl_path(ca_dir).read_bytes())
    ca_certificate = load_certificate_file(ca_dir / "ca.crt")
    ca_key = ca_certificate.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(ca_key)
    assert crl.issuer == ca_certificate.subject
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert "revoked  npcs://demo/analyst/alice" in ok("ca", "list", ca_dir).output

    ok("ca", "revoke", ca_dir, alice / "tls.crt")  # repeating republishes, number rises
    again = x509.load_pem_x509_crl(crl_path(ca_dir).read_bytes())
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert len(again) == 1


def test_revoking_a_certificate_the_ca_never_issued_says_how_to_find_one(tmp_path: Path) -> None:
    ca_dir, _ = _person_signed_by_ca(tmp_path)
    result = run("ca", "revoke", ca_dir, "ab" * 32)
    assert result.exit_code == 1
    assert "npcs ca list" in result.output
    assert not crl_path(ca_dir).exists()


def test_ca_issue_says_it_is_for_demos_only(tmp_path: Path) -> None:
    assert "DEMO ONLY" in ok("ca", "issue", "--help").output
    ok("ca", "init", tmp_path / "ca", "--partnership", "demo")
    issued = ok("ca", "issue", tmp_path / "ca", "--role", "analyst", "--name", "bob",
                "--out", tmp_path / "bob")  # fmt: skip
    assert "DEMO ONLY" in issued.output
    assert "npcs identity init" in issued.output
    listed = json.loads(ok("ca", "list", tmp_path / "ca", "--format", "json").output)
    assert [c["identity"] for c in listed["certificates"]] == ["npcs://demo/analyst/bob"]
