"""`npcs-node serve DIR`: answer partnership queries over mTLS until stopped.

Prints `listening on HOST:PORT` (and writes the port to DIR/serve.port) once the server
accepts calls, so scripts and tests can wait for it. SIGTERM or Ctrl-C stops it
gracefully: in-flight queries finish (their charges are committed) before it exits.
SIGHUP re-reads the revocation list (`crl_file`) at once; it is also re-read whenever
the file changes.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from kernel.files import PRIVATE_FILE_MODE, atomic_write_text

PORT_FILE = "serve.port"


@click.command()
@click.argument(
    "root", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--host", default=None, help="Address to bind (default: node.toml's host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (0: any free port)."
)
@click.option(
    "--grace",
    type=float,
    default=None,
    help="Seconds in-flight calls get to finish on shutdown (default: node.toml's "
    "server.grace_seconds, 10).",
)
def command(root: Path, host: str | None, port: int | None, grace: float | None) -> None:
    """Serve the node in DIR over mTLS (no insecure port) until SIGTERM or Ctrl-C."""
    from node.high_water import LedgerRolledBack
    from node.permissions import check_node_permissions
    from node.security import MissingCredentialsError
    from node.server import ServerOptions, configure_logging, running_node
    from node.settings import load_settings

    check_node_permissions(root)
    settings = load_settings(root)
    options = ServerOptions(
        host=host or settings.host,
        port=settings.port if port is None else port,
        grace_seconds=grace,
    )
    configure_logging()
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    port_file = root / PORT_FILE
    try:
        with running_node(root, options) as node:
            # SIGHUP re-reads the revocation list now (systemd's ExecReload).
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: node.reload())
            _write_port_file(port_file, node.port)
            if not node.engine.healthy:
                click.echo(
                    "warning: the ledger failed its self-check; the node reports NOT_SERVING "
                    "and answers no query (run `npcs-node ledger verify`)",
                    err=True,
                )
            if node.metrics is not None:
                click.echo(f"metrics on {node.metrics.url}")
            click.echo(f"listening on {node.address}")
            sys.stdout.flush()
            stop.wait()
            click.echo("stopping: letting in-flight calls finish", err=True)
    except (MissingCredentialsError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    except LedgerRolledBack as exc:
        raise click.ClickException(f"the ledger was rolled back: {exc}") from exc
    finally:
        port_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _write_port_file(path: Path, port: int) -> None:
    """Atomically: a reader sees no file or the whole port number."""
    atomic_write_text(path, f"{port}\n", mode=PRIVATE_FILE_MODE)
