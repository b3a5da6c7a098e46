"""`npcs-node health`: ask a running node over mTLS whether it serves (a probe).

Exit codes (see `node.probe`): 0 SERVING, 3 NOT_SERVING, 4 unreachable, 5 refused by
TLS or node policy; 1 and 2 stay click's (a bad folder, a usage error). Imports gRPC and
the health stubs only, so it is quick enough for a systemd, Kubernetes or Nagios probe.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kernel.clikit import text_or_json_option

LOCAL_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104  (bind-any -> loopback)


@click.command("health")
@click.argument(
    "node_dir",
    metavar="[DIR]",
    required=False,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
)
@click.option(
    "--address",
    metavar="HOST:PORT",
    help="The node to ask (default with DIR: node.toml's host and the port it serves on).",
)
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Partnership CA certificate (default with DIR: DIR/keys/ca.crt).")  # fmt: skip
@click.option("--cert", "cert_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Certificate to present (default with DIR: the node's own).")  # fmt: skip
@click.option("--key", "key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Its private key (default with DIR: the node's own).")  # fmt: skip
@click.option(
    "--server-name", help="Name the node's certificate must carry (default: the address's host)."
)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for an answer.")  # fmt: skip
@text_or_json_option
def command(  # noqa: PLR0917 - click passes every option as an argument
    node_dir: Path | None,
    address: str | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    server_name: str | None,
    timeout: float,
    output_format: str,
) -> None:
    """Ask a running node whether it serves; exit 0 if SERVING.

    On the node's host, `npcs-node health DIR` uses the node's own certificate and
    address. From elsewhere, pass --address with --ca, --cert and --key (e.g. an
    auditor's credentials). Exit codes: 0 SERVING, 3 NOT_SERVING (runs but answers no
    query), 4 unreachable, 5 refused (TLS handshake or certificate problem).
    """
    from node.probe import ProbeCredentials, probe_health

    files = _credential_files(node_dir, ca_file, cert_file, key_file)
    target = address or _local_address(node_dir)
    credentials = ProbeCredentials(*(_read(path, what) for what, path in files.items()))
    result = probe_health(target, credentials, timeout=timeout, server_name=server_name)
    if output_format == "json":
        body = {
            "address": result.address,
            "status": result.outcome.name,
            "exit_code": int(result.outcome),
            "detail": result.detail,
            "seconds": round(result.seconds, 4),
        }
        click.echo(json.dumps(body, sort_keys=True))
    else:
        click.echo(f"{result.address}: {result.outcome.name} ({result.detail})")
    sys.exit(int(result.outcome))


def _credential_files(
    node_dir: Path | None, ca: Path | None, cert: Path | None, key: Path | None
) -> dict[str, Path]:
    """The CA, certificate and key files (in that order), from options or the node folder."""
    if node_dir is not None:
        from node.layout import NodePaths

        paths = NodePaths(node_dir)
        ca, cert, key = ca or paths.ca_cert, cert or paths.tls_cert, key or paths.tls_key
    if ca is None or cert is None or key is None:
        raise click.UsageError(
            "give the node folder (`npcs-node health DIR`) or all of --address, --ca, "
            "--cert and --key"
        )
    return {"CA certificate": ca, "certificate": cert, "private key": key}


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(
            f"cannot read the {what} {path}: {exc.strerror}; has `npcs-node install-cert` "
            "been run, and may this user read the node's keys?"
        ) from exc


def _local_address(node_dir: Path | None) -> str:
    """node.toml's host (bind-any means loopback) and the port `serve` wrote, if any."""
    if node_dir is None:
        raise click.UsageError("give --address HOST:PORT or the node folder DIR")
    from node.cli.serve import PORT_FILE
    from node.settings import load_settings

    settings = load_settings(node_dir)
    host = LOCAL_HOSTS.get(settings.host, settings.host)
    port_file = node_dir / PORT_FILE
    try:
        port = int(port_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        port = settings.port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
