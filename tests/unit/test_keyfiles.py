"""Key files (kernel/keyfiles.py): modes, never overwriting, and errors a caller can catch."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kernel.keyfiles import (
    KeyFileError,
    generate_ed25519_key,
    load_ed25519_private_key,
    load_ed25519_public_key,
    private_key_pem,
    public_key_from_pem,
    public_key_from_raw,
    public_key_pem,
    write_private_file,
    write_public_file,
)
from privacy import tlog


def test_private_key_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    key = generate_ed25519_key()
    path = tmp_path / "ledger.key"
    write_private_file(path, private_key_pem(key))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_ed25519_private_key(path)
    assert tlog.key_fingerprint(loaded.public_key()) == tlog.key_fingerprint(key.public_key())
    with pytest.raises(FileExistsError):
        write_private_file(path, private_key_pem(generate_ed25519_key()))
    public_path = tmp_path / "ledger.pub"
    write_public_file(public_path, public_key_pem(key.public_key()))
    assert tlog.raw_public_key(load_ed25519_public_key(public_path)) == tlog.raw_public_key(
        key.public_key()
    )


def test_an_existing_private_key_is_kept_and_the_error_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    original = private_key_pem(generate_ed25519_key())
    write_private_file(path, original)
    with pytest.raises(KeyFileError, match=r"refusing to overwrite existing key .*move it away"):
        write_private_file(path, private_key_pem(generate_ed25519_key()))
    assert path.read_bytes() == original


def test_a_public_file_is_replaced_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "tls.crt"
    write_public_file(path, b"first")
    with pytest.raises(KeyFileError, match="refusing to overwrite existing"):
        write_public_file(path, b"second")
    assert path.read_bytes() == b"first"
    write_public_file(path, b"second", overwrite=True)
    assert path.read_bytes() == b"second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [entry.name for entry in tmp_path.iterdir()] == ["tls.crt"]  # no temporary left


def test_a_missing_key_file_is_a_key_file_error_and_a_file_not_found_error(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "ledger.key"
    with pytest.raises(KeyFileError, match=r"ledger key .*ledger\.key does not exist"):
        load_ed25519_private_key(missing, "ledger key")
    with pytest.raises(FileNotFoundError):
        load_ed25519_private_key(missing, "ledger key")


def test_public_keys_round_trip_through_pem_and_raw_bytes() -> None:
    public = generate_ed25519_key().public_key()
    assert public_key_from_pem(public_key_pem(public)) == public
    assert public_key_from_raw(tlog.raw_public_key(public)) == public
    with pytest.raises(KeyFileError, match="node a's ledger key is not a PEM public key"):
        public_key_from_pem(b"junk", source="node a's ledger key")
