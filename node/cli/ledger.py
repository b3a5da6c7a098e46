"""`npcs-node ledger show|verify|export`: read, check and hand over the privacy-budget ledger."""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from node.layout import NodePaths

if TYPE_CHECKING:
    from privacy.ledger.entry import LedgerEntry

NODE_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
POOL_MIN_ENTRIES = 32_768
"""`ledger verify` starts worker processes only for ledgers this long: starting them cost
more than they saved at 10k entries (0.7x) and paid at 100k (1.3x) in bench_ledger."""


@click.group(name="ledger")
def command() -> None:
    """Show, verify, export or (on purpose, recorded) reset this node's ledger."""


@command.command()
@click.argument("node_dir", type=NODE_DIR)
@click.option(
    "--last",
    "last",
    type=click.IntRange(min=1),
    default=None,
    help="Show only the last N entries (N >= 1).",
)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def show(node_dir: Path, last: int | None, output_format: str) -> None:
    """Every charge: time, analyst, dataset, statistic, purpose, cost, and what is left of
    the budget of the dataset's unit kind (one per kind of person: child, staff); then
    each unit kind's spending, in rho and in epsilon at the partnership's delta."""
    from node.node_ledger import budget_policy
    from node.settings import load_settings
    from privacy.budget import format_rho

    settings = load_settings(node_dir)
    policy = budget_policy(settings.budget)
    with _open_reader(node_dir) as reader:
        if last is None:
            entries, spent = list(reader.iter_entries()), reader.spent_by_dataset()
        else:  # only the last entries: read O(last) rows whatever the ledger's size
            entries, spent = reader.tail(last)
    # What each dataset had spent just after each entry: today's totals minus what later
    # entries spent (datasets of one unit kind share its budget).
    spent_after = dict(spent)
    rows: list[dict[str, Any]] = []
    for entry in reversed(entries):
        remaining = policy.remaining(entry.dataset, lambda name: spent_after.get(name, 0), None, 0)
        spent_after[entry.dataset] = spent_after.get(entry.dataset, 0) - entry.cost_units
        rows.append(
            {
                "seq": entry.seq,
                "time": entry.time,
                "analyst": entry.analyst,
                "dataset": entry.dataset,
                "unit_kind": policy.unit_kind(entry.dataset),
                "statistic": entry.statistic,
                "purpose": entry.purpose,
                "status": entry.status,
                "cost": describe_cost(entry),
                "cost_rho": format_rho(entry.cost_units),
                "epsilon": entry.epsilon,
                "remaining_rho": format_rho(remaining),
            }
        )
    rows.reverse()
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    _print_table(rows)
    for line in unit_kind_lines(policy, spent, settings.budget.delta):
        click.echo(line)


def unit_kind_lines(policy: Any, spent_by_dataset: dict[str, int], delta: str) -> list[str]:
    """'child (incidents, reports): spent rho 0.5 of 10 (epsilon ...)': one line per kind."""
    from privacy.budget import format_rho
    from privacy.text import printable
    from privacy.unit_spending import spending_per_unit_kind

    lines = []
    for row in spending_per_unit_kind(policy, spent_by_dataset, delta):
        total = "no budget" if row.total_units is None else format_rho(row.total_units)
        who = f"{row.unit_kind} ({', '.join(row.datasets)})"
        lines.append(
            f"{printable(who)}: spent rho {format_rho(row.spent_units)} of {total}, "
            f"remaining rho {format_rho(row.remaining_units)}; epsilon "
            f"{_short(row.spent_epsilon)} of {_short(row.total_epsilon)} at delta {delta}"
        )
    return lines


def _short(epsilon: str) -> str:
    return f"{float(epsilon):.4g}"


def describe_cost(entry: LedgerEntry) -> str:
    """'rho 0.01 (eps 1.23 at delta 1e-09)' for tables and logs."""
    from privacy.budget import format_rho

    epsilon = float(entry.epsilon)
    return f"rho {format_rho(entry.cost_units)} (eps {epsilon:.4g} at delta {entry.delta})"


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from privacy.text import printable

    def shown(value: str) -> Text:
        """Recorded text as plain text: no rich markup, no control characters."""
        return Text(printable(value))

    table = Table(title="Privacy-budget ledger")
    for column in ("#", "time", "analyst", "dataset", "statistic", "purpose", "cost", "remaining"):
        table.add_column(column)
    for row in rows:  # "remaining": of the budget of the dataset's unit kind
        failed = " (release failed)" if row["status"] != "released" else ""
        table.add_row(
            str(row["seq"]),
            row["time"][:19].replace("T", " "),
            shown(row["analyst"]),
            shown(row["dataset"]),
            shown(row["statistic"]),
            shown(row["purpose"]),
            row["cost"] + failed,
            f"rho {row['remaining_rho']} ({row['unit_kind'] or 'no unit kind'})",
        )
    Console(width=200).print(table)


@command.command()
@click.argument("node_dir", type=NODE_DIR)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Ledger public key PEM (default: NODE_DIR/keys/ledger.pub).",
)
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint you remembered earlier; the ledger must still contain it.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that check chunks of entries and signatures side by side, for ledgers "
    f"of {POOL_MIN_ENTRIES:,} entries or more (default: one per CPU core; 1: none).",
)
def verify(
    node_dir: Path, public_key: Path | None, checkpoint_files: tuple[Path, ...], jobs: int | None
) -> None:
    """Recompute the ledger's Merkle tree and totals and check every signature.

    Hashes every stored entry and verifies every checkpoint signature (chunks of entries
    side by side, on other cores), recomputes every tree node and checkpoint root, and
    shows progress on standard error for ledgers of more than one chunk. Exits 0 with a
    one-line summary when the ledger is sound; otherwise exits 1 naming the first bad entry.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import ExitStack

    from kernel.keyfiles import load_ed25519_public_key
    from privacy import tlog
    from privacy.tlog import CheckpointFormatError, SignedCheckpoint

    paths = NodePaths(node_dir)
    key_file = public_key or paths.ledger_public_key
    if not key_file.exists():
        raise click.ClickException(
            f"{key_file} does not exist: pass the node's ledger public key with --public-key"
        )
    key = load_ed25519_public_key(key_file, "ledger public key")
    remembered = []
    for path in checkpoint_files:
        try:
            remembered.append(SignedCheckpoint.from_text(path.read_text()))
        except CheckpointFormatError as exc:
            raise click.ClickException(f"{path} is not a signed checkpoint: {exc}") from exc
    workers = jobs or os.cpu_count() or 1
    with _open_reader(node_dir) as reader, ExitStack() as stack:
        pool = None
        if workers > 1 and reader.size() >= POOL_MIN_ENTRIES:
            spawn = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=spawn))
        report = reader.verify(key, remembered=remembered, pool=pool, progress=_progress())
    if not report.ok:
        where = (
            f"first bad entry: {report.first_bad_entry}: "
            if report.first_bad_entry is not None
            else ""
        )
        more = f" (+{len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        raise click.ClickException(f"ledger FAILED verification: {where}{report.problems[0]}{more}")
    click.echo(
        f"ledger OK: {report.size} entries, root {report.root.hex()}, "
        f"signed by key {tlog.key_fingerprint(key)[:16]}"
        + (f", {len(remembered)} remembered checkpoint(s) consistent" if remembered else "")
    )


def _progress() -> Any:
    """Report verification progress on standard error: in place on a terminal, else
    every tenth of the ledger; silent for a ledger of one chunk."""
    from privacy.ledger.verifier import CHUNK_ENTRIES

    terminal = sys.stderr.isatty()
    reported = [0]

    def report(done: int, size: int) -> None:
        if size <= CHUNK_ENTRIES:
            return
        line = f"verified {done:,} of {size:,} entries"
        if terminal:
            click.echo(f"\r{line}", err=True, nl=done >= size)
        elif done >= size or done * 10 // size > reported[0]:
            reported[0] = done * 10 // size
            click.echo(line, err=True)

    return report


@command.command()
@click.argument("node_dir", type=NODE_DIR)
@click.option(
    "--i-understand-this-is-recorded",
    "understood",
    is_flag=True,
    help="Required: the new ledger's first entry names the old ledger's last checkpoint.",
)
def reset(node_dir: Path, understood: bool) -> None:
    """Start a new ledger on purpose, with the node stopped.

    Use only when the ledger is truly lost (the node refuses to start on a missing,
    truncated or restored ledger). The old ledger file is moved to ledger/archive/; the
    new ledger's genesis entry names the last checkpoint this node signed, and every
    `npcs audit` of this node reports it.
    """
    from node.ledger_reset import reset_ledger
    from node.serve_lock import NodeAlreadyServingError
    from privacy.ledger.errors import LedgerFault

    if not understood:
        raise click.UsageError(
            "a reset starts a new ledger and is recorded for the partnership's auditors; "
            "rerun with --i-understand-this-is-recorded if that is what you want"
        )
    try:
        outcome = reset_ledger(node_dir)
    except (LedgerFault, NodeAlreadyServingError, OSError, ValueError) as exc:
        raise click.ClickException(f"ledger not reset: {exc}") from exc
    previous = outcome.previous.checkpoint
    if outcome.archived_as is not None:
        click.echo(f"archived the old ledger as {outcome.archived_as}")
    click.echo(
        f"started a new ledger; its genesis entry names the last known checkpoint: "
        f"size {previous.size}, root {previous.root.hex()}. Auditors will see this reset."
    )


@command.command()
@click.argument("node_dir", type=NODE_DIR)
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), required=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def export(node_dir: Path, output_format: str, output: Path | None) -> None:
    """Everything an auditor needs: all entries, all signed checkpoints, the public key.

    JSON: one document. CSV: one row per entry, carrying the signed checkpoint at that
    entry's size, the origin and the raw ledger public key (base64).
    """
    with _open_reader(node_dir) as reader:
        document = _export_document(node_dir, reader)
    text = _as_json(document) if output_format == "json" else _as_csv(document)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        click.echo(f"wrote {len(document['entries'])} entries to {output}", err=True)


def _export_document(node_dir: Path, reader: Any) -> dict[str, Any]:
    from kernel.keyfiles import load_ed25519_public_key, public_key_from_raw, public_key_pem
    from privacy import tlog

    paths = NodePaths(node_dir)
    meta = reader.meta()
    if paths.ledger_public_key.exists():
        public_key = load_ed25519_public_key(paths.ledger_public_key, "ledger public key")
    else:
        public_key = public_key_from_raw(base64.b64decode(meta["public_key"]))
    checkpoints = [
        {
            "size": signed.checkpoint.size,
            "time": signed_time,
            "root": base64.b64encode(signed.checkpoint.root).decode(),
            "signature": base64.b64encode(signed.signature).decode(),
            "text": signed.to_text(),
        }
        for signed_time, signed in reader.checkpoints()
    ]
    entries = []
    for entry in reader.iter_entries():
        record = entry.to_json_dict()
        record["leaf_hash"] = entry.leaf_hash().hex()
        entries.append(record)
    return {
        "format": "npcs-ledger-export/1",
        "origin": meta.get("origin", ""),
        "leaf_hash_rule": "SHA-256(0x00 || sorted-key compact JSON of the entry, bytes base64)",
        "tree": "RFC 6962 / RFC 9162 Merkle tree over the entries in seq order",
        "public_key_pem": public_key_pem(public_key).decode(),
        "public_key_raw": base64.b64encode(tlog.raw_public_key(public_key)).decode(),
        "key_fingerprint": tlog.key_fingerprint(public_key),
        "note_verifier_key": _note_verifier_key(meta.get("origin", ""), public_key),
        "entries": entries,
        "checkpoints": checkpoints,
    }


def _note_verifier_key(origin: str, public_key: Any) -> str:
    """The ledger key as a signed-note verifier key ("" if the origin is not a key name)."""
    from privacy import tlog
    from privacy.signed_note import ed25519_verifier_key

    try:
        return ed25519_verifier_key(origin, tlog.raw_public_key(public_key))
    except ValueError:
        return ""


def _as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _as_csv(document: dict[str, Any]) -> str:
    by_size = {checkpoint["size"]: checkpoint for checkpoint in document["checkpoints"]}
    entry_fields = list(document["entries"][0]) if document["entries"] else ["seq"]
    fields = [
        *entry_fields,
        "checkpoint_size",
        "checkpoint_root",
        "checkpoint_signature",
        "origin",
        "ledger_public_key",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for entry in document["entries"]:
        checkpoint = by_size.get(entry["seq"] + 1, {})
        writer.writerow(
            {
                **entry,
                "checkpoint_size": checkpoint.get("size", ""),
                "checkpoint_root": checkpoint.get("root", ""),
                "checkpoint_signature": checkpoint.get("signature", ""),
                "origin": document["origin"],
                "ledger_public_key": document["public_key_raw"],
            }
        )
    return buffer.getvalue()


def _open_reader(node_dir: Path) -> Any:
    from privacy.ledger.errors import LedgerFault
    from privacy.ledger.reader import LedgerReader

    try:
        return LedgerReader.open_existing(NodePaths(node_dir).ledger_db)
    except LedgerFault as exc:
        raise click.ClickException(
            f"{exc}: has this node answered any query yet? (the ledger is created by "
            "`npcs-node serve`)"
        ) from exc
