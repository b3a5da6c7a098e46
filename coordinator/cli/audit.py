"""`npcs audit`: verify every node's privacy-budget ledger as the partnership's auditor.

Exit codes: 0 every audited ledger checks out; 5 at least one node FAILED (its
problems are listed); 1 usage or set-up errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from coordinator.audit import AuditReport
    from coordinator.partnership import IdentityFiles

EXIT_AUDIT_FAILED = 5


@click.command("audit")
@click.option("--nodes", help="Comma-separated node names (default: every node).")
@click.option(
    "--identity",
    "identity_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Auditor credentials folder (from `npcs ca issue --role auditor`), instead of "
    "the identity in partnership.toml.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the audit report here (.json: JSON, otherwise markdown).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Remembered checkpoints file (default: audit_checkpoints.json in the npcs data "
    "directory, $NPCS_DATA_DIR).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per call.")
@click.option("--config", envvar="NPCS_CONFIG", type=click.Path(path_type=Path))
def command(  # noqa: PLR0917 - click passes every option as an argument
    nodes: str | None,
    identity_dir: Path | None,
    output_format: str,
    out: Path | None,
    state_file: Path | None,
    timeout: float,
    config: Path | None,
) -> None:
    """Check each node's ledger: signatures, Merkle root, history, charges and totals.

    \b
    Remembers each passing node's signed checkpoint, so the next audit proves its
    ledger only grew (no entry removed or rewritten since).
    \b
    Examples:
      npcs audit --identity ~/npcs/auditor --out audit.md
      npcs audit --nodes state-a,county-b --format json
    """
    report = run_audit(
        config=config,
        identity_dir=identity_dir,
        nodes=nodes,
        state_file=state_file,
        timeout=timeout,
    )
    if out is not None:
        from coordinator.audit import write_report

        write_report(report, out)
    if output_format == "json":
        from coordinator.audit import report_json

        click.echo(report_json(report), nl=False)
    else:
        from coordinator.audit import summary_lines

        for line in summary_lines(report):
            click.echo(line)
        if out is not None:
            click.echo(f"Report written to {out}")
    if not report.ok:
        raise SystemExit(EXIT_AUDIT_FAILED)


def run_audit(
    *,
    config: Path | None,
    identity_dir: Path | None = None,
    nodes: str | None = None,
    state_file: Path | None = None,
    timeout: float = 30.0,
) -> AuditReport:
    """Load the partnership and the auditor's credentials, audit, remember checkpoints."""
    from coordinator.audit import AuditMemory, AuditStateError, audit_partnership
    from coordinator.client import ClientCredentials
    from coordinator.partnership import PartnershipError, load_partnership, resolve_config_path
    from kernel.identity import IdentityError, KeyFileError

    if timeout <= 0:
        raise click.UsageError("--timeout must be a positive number of seconds")
    try:
        partnership = load_partnership(resolve_config_path(config))
        identity = partnership.identity
        if identity_dir is not None:
            identity = _identity_from_folder(identity_dir)
        auditor = _auditor_uri(identity, partnership.name)
        credentials = ClientCredentials.load(identity)
        wanted = [name.strip() for name in nodes.split(",") if name.strip()] if nodes else None
        selected = partnership.select(wanted)
        memory = AuditMemory(state_file or AuditMemory.default_path())
    except (PartnershipError, IdentityError, KeyFileError, AuditStateError) as exc:
        raise click.ClickException(str(exc)) from exc
    return audit_partnership(
        partnership,
        credentials,
        auditor=auditor,
        memory=memory,
        nodes=selected,
        timeout=timeout,
    )


def _identity_from_folder(folder: Path) -> IdentityFiles:
    from coordinator.ca import CredentialPaths
    from coordinator.partnership import IdentityFiles

    paths = CredentialPaths(folder.resolve())
    return IdentityFiles(
        ca_certificate=paths.ca_cert,
        certificate=paths.tls_cert,
        tls_key=paths.tls_key,
        signing_key=paths.signing_key,
    )


def _auditor_uri(identity: IdentityFiles, partnership: str) -> str:
    """The auditor's identity, refusing early (and clearly) anyone who is not one."""
    from kernel.identity import identity_from_certificate, load_certificate_file

    holder = identity_from_certificate(load_certificate_file(identity.certificate))
    if holder.role != "auditor" or holder.partnership != partnership:
        raise click.ClickException(
            f"`npcs audit` needs an auditor of partnership {partnership!r}, but "
            f"{identity.certificate} names {holder}: pass --identity with the folder "
            "`npcs ca issue --role auditor` made"
        )
    return holder.uri
