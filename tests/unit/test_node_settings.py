"""node.toml and NPCS_NODE_... variables build the node's settings."""

from pathlib import Path

import pytest

from node.settings import SettingsError, load_settings

FINGERPRINT = "ab" * 32


def _node_folder(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "node.toml").write_text(f'name = "a"\npartnership = "p"\n{extra}')
    return tmp_path


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _node_folder(tmp_path, 'port = 7000\n[budget]\nmax_rho_per_query = "2"\n')
    monkeypatch.setenv("NPCS_NODE_PORT", "7001")
    settings = load_settings(folder)
    assert settings.port == 7001
    assert settings.budget.max_rho_per_query == "2"


def test_revoked_fingerprints_are_stored_canonically(tmp_path: Path) -> None:
    openssl_line = "sha256 Fingerprint=" + ":".join(["AB"] * 32)
    folder = _node_folder(tmp_path, f'revoked_fingerprints = ["{openssl_line}"]\n')
    assert load_settings(folder).revoked_fingerprints == [FINGERPRINT]


def test_a_revocation_entry_that_could_never_match_is_refused(tmp_path: Path) -> None:
    folder = _node_folder(tmp_path, 'revoked_fingerprints = ["not-a-fingerprint"]\n')
    with pytest.raises(SettingsError, match="not a SHA-256 fingerprint"):
        load_settings(folder)


def test_a_folder_without_node_toml_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="npcs-node init"):
        load_settings(tmp_path)


def test_the_cli_reports_invalid_settings_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from node.cli import cli

    folder = _node_folder(tmp_path, 'revoked_fingerprints = ["zz"]\n')
    result = CliRunner().invoke(cli, ["status", str(folder)])
    assert result.exit_code == 1
    assert "revoked_fingerprints" in result.output
    assert "Traceback" not in result.output


def test_a_node_toml_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    folder = _node_folder(tmp_path, "port = = 3\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(folder)
