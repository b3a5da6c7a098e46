"""`npcs-node init --dns/--ip`: the node's real host names go in its CSR, the printed next
steps tell the CA operator to sign them, and install-cert refuses a certificate without
them. Also: the node.toml that init writes documents and loads every new setting."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from coordinator.ca import CertificateAuthority, init_ca, load_csr
from kernel.keyfiles import certificate_pem
from node.cli import cli
from node.layout import NodePaths
from node.provision import ProvisionError, init_node_folder, install_certificate
from node.settings import load_settings


def _csr_sans(paths: NodePaths) -> tuple[list[str], list[str]]:
    csr = x509.load_pem_x509_csr(paths.tls_csr.read_bytes())
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        sans.get_values_for_type(x509.DNSName),
        [str(address) for address in sans.get_values_for_type(x509.IPAddress)],
    )


def test_init_dns_and_ip_options_put_the_hosts_in_the_csr_and_the_sign_command(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "node"
    result = CliRunner().invoke(
        cli,
        [
            "init",
            str(folder),
            "--name",
            "county-a",
            "--partnership",
            "demo",
            "--dns",
            "npcs.county-a.example.gov",
            "--dns",
            "localhost",
            "--ip",
            "192.0.2.5",
            "--ip",
            "2001:db8::5",
        ],
    )
    assert result.exit_code == 0, result.output
    dns, ips = _csr_sans(NodePaths(folder))
    assert dns == ["localhost", "npcs.county-a.example.gov"]  # defaults kept, no repeats
    assert ips == ["127.0.0.1", "192.0.2.5", "2001:db8::5"]
    assert (
        "--dns npcs.county-a.example.gov --ip 192.0.2.5 --ip 2001:db8::5 --out county-a.crt"
        in result.output
    )
    assert "npcs.county-a.example.gov" in result.output.splitlines()[1]


def test_init_without_host_options_says_only_this_machine_can_connect(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "node"), "--name", "a", "--partnership", "demo"]
    )
    assert result.exit_code == 0, result.output
    assert _csr_sans(NodePaths(tmp_path / "node")) == (["localhost"], ["127.0.0.1"])
    assert "--dns NAME --ip ADDR" in result.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--ip", "county-a.example.gov", "not an IP address"), ("--dns", "a b", "not a DNS")],
)
def test_init_refuses_a_malformed_host_before_creating_anything(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    folder = tmp_path / "node"
    result = CliRunner().invoke(
        cli, ["init", str(folder), "--name", "a", "--partnership", "demo", option, value]
    )
    assert result.exit_code == 1
    assert message in result.output
    assert not folder.exists()


def test_install_cert_refuses_a_certificate_without_the_requested_host_names(
    tmp_path: Path,
) -> None:
    init_ca(tmp_path / "ca", "demo")
    authority = CertificateAuthority.load(tmp_path / "ca")
    node = init_node_folder(
        tmp_path / "node",
        name="county-a",
        partnership="demo",
        dns_names=["npcs.county-a.example.gov"],
        ip_addresses=["192.0.2.5"],
    )
    csr = load_csr(node.tls_csr)
    ca_cert = tmp_path / "ca" / "ca.crt"

    plain = authority.sign_csr(csr, role="node", name="county-a")
    (tmp_path / "plain.crt").write_bytes(certificate_pem(plain.certificate))
    with pytest.raises(
        ProvisionError, match=re.escape("--dns npcs.county-a.example.gov --ip 192.0.2.5")
    ):
        install_certificate(node.root, tmp_path / "plain.crt", ca_cert)
    assert not node.tls_cert.exists()

    named = authority.sign_csr(
        csr,
        role="node",
        name="county-a",
        dns_names=["npcs.county-a.example.gov"],
        ip_addresses=[ipaddress.ip_address("192.0.2.5")],
    )
    (tmp_path / "named.crt").write_bytes(certificate_pem(named.certificate))
    installed = install_certificate(node.root, tmp_path / "named.crt", ca_cert)
    assert installed.fingerprint == named.fingerprint
    assert node.tls_cert.exists()


def test_the_written_node_toml_holds_the_server_limits_and_documents_suppression(
    tmp_path: Path,
) -> None:
    node = init_node_folder(tmp_path / "node", name="a", partnership="demo")
    text = node.settings_file.read_text(encoding="utf-8")
    assert "# suppress_counts_below = " in text
    settings = load_settings(node.root)
    assert settings.suppress_counts_below is None
    assert (
        settings.server.max_workers,
        settings.server.max_concurrent_rpcs,
        settings.server.grace_seconds,
    ) == (8, 32, 10.0)

    enabled = text.replace("# suppress_counts_below = 11", "suppress_counts_below = 11")
    enabled = enabled.replace("max_concurrent_rpcs = 32", "max_concurrent_rpcs = 64")
    node.settings_file.write_text(enabled, encoding="utf-8")
    settings = load_settings(node.root)
    assert settings.suppress_counts_below == 11
    assert settings.server.max_concurrent_rpcs == 64
