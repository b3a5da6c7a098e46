"""`npcs-node ledger show|verify|export` end to end on a real node folder."""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support_ledger import charge_request

from kernel.keyfiles import (
    generate_ed25519_key,
    private_key_pem,
    public_key_from_pem,
    public_key_from_raw,
    public_key_pem,
    write_private_file,
    write_public_file,
)
from node.cli import cli
from node.layout import NodePaths
from node.node_ledger import ledger_origin, open_node_ledger
from node.settings import load_settings
from privacy import signed_note, tlog
from privacy.ledger.entry import ChargeRequest, entry_from_canonical_bytes
from privacy.tlog import SignedCheckpoint

NODE_TOML = """name = "node-a"
partnership = "test"

[budget]
max_rho_per_query = "0.5"
total_rho_per_dataset = { incidents = "1", reports = "2" }
"""
"""Settings from before per-person budgets: read as child = "2" (the largest of its datasets')."""


def charge(number: int, dataset: str = "incidents") -> ChargeRequest:
    return charge_request(
        f"q{number}",
        f'{{"n":{number}}}'.encode(),
        dataset=dataset,
        statistic="count by year",
        purpose="annual fatality report",
        cost_units=125_000,
        mechanism_summary='{"count":{"distribution":"gaussian","scale":2.0}}',
        snapshot_id="snap-1",
    )


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    paths = NodePaths(root)
    for folder in (root, paths.keys_dir, paths.ledger_dir):
        folder.mkdir(parents=True)
    paths.settings_file.write_text(NODE_TOML)
    key = generate_ed25519_key()
    write_private_file(paths.ledger_key, private_key_pem(key))
    write_public_file(paths.ledger_public_key, public_key_pem(key.public_key()))
    with open_node_ledger(root) as ledger:
        assert ledger.self_check().ok
        for number in range(5):
            ledger.charge_and_release(
                charge(number), functools.partial(bytes, f"answer {number}".encode())
            )
        ledger.charge_and_release(charge(5, "reports"), lambda: b"answer 5")
    return root


def run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ledger", *arguments])
    return result.exit_code, result.output


def test_ledger_command_is_registered_in_npcs_node() -> None:
    code, output = run("--help")
    assert code == 0
    for subcommand in ("show", "verify", "export"):
        assert subcommand in output


def test_show_prints_every_charge_with_cost_and_remaining_budget(node_dir: Path) -> None:
    code, output = run("show", str(node_dir))
    assert code == 0, output
    assert "alice" in output
    assert "annual fatality report" in output
    assert "rho 0.125 (eps" in output
    assert "rho 1.375 (child)" in output  # a child's budget after five charges of 0.125 of 2
    assert "child (incidents, reports): spent rho 0.75 of 2, remaining rho 1.25; epsilon " in (
        output
    )


def test_show_as_json_lists_remaining_after_each_entry(node_dir: Path) -> None:
    code, output = run("show", str(node_dir), "--format", "json")
    assert code == 0, output
    rows = json.loads(output)
    assert [row["remaining_rho"] for row in rows] == [
        "1.875",
        "1.75",
        "1.625",
        "1.5",
        "1.375",
        "1.25",  # reports shares the child's budget with incidents
    ]
    assert {row["unit_kind"] for row in rows} == {"child"}


def test_show_last_reads_only_the_tail_and_keeps_the_remaining_budget(node_dir: Path) -> None:
    code, output = run("show", str(node_dir), "--last", "2", "--format", "json")
    assert code == 0, output
    rows = json.loads(output)
    assert [(row["seq"], row["remaining_rho"]) for row in rows] == [(4, "1.375"), (5, "1.25")]
    _, everything = run("show", str(node_dir), "--format", "json")
    assert rows == json.loads(everything)[-2:]
    code, table = run("show", str(node_dir), "--last", "1")
    assert code == 0, table
    assert "child (incidents, reports): spent rho 0.75 of 2, remaining rho 1.25" in table


def test_verify_passes_with_a_one_line_summary(node_dir: Path) -> None:
    code, output = run("verify", str(node_dir))
    assert code == 0, output
    assert output.count("\n") == 1
    assert output.startswith("ledger OK: 6 entries, root ")


def test_verify_fails_naming_the_first_bad_entry(node_dir: Path) -> None:
    connection = sqlite3.connect(NodePaths(node_dir).ledger_db)
    with connection:
        connection.execute("UPDATE entries SET purpose = 'something else' WHERE seq = 2")
        connection.execute("UPDATE entries SET answer = x'00' WHERE seq = 4")
    connection.close()
    code, output = run("verify", str(node_dir))
    assert code == 1
    assert "first bad entry: 2" in output


def test_verify_checks_a_remembered_checkpoint(node_dir: Path, tmp_path: Path) -> None:
    paths = NodePaths(node_dir)
    with open_node_ledger(node_dir) as ledger:
        remembered = ledger.latest_checkpoint()
    memory = tmp_path / "checkpoint.txt"
    memory.write_text(remembered.to_text())
    code, output = run("verify", str(node_dir), "--checkpoint", str(memory))
    assert code == 0, output
    assert "1 remembered checkpoint(s) consistent" in output
    connection = sqlite3.connect(paths.ledger_db)  # a consistent truncation to 5 entries
    with connection:
        connection.execute("DELETE FROM entries WHERE seq = 5")
        connection.execute("DELETE FROM checkpoints WHERE size = 6")
        connection.execute("DELETE FROM tree_nodes WHERE ((idx + 1) << level) > 5")
        connection.execute("DELETE FROM spent_totals WHERE name = 'reports'")
        connection.execute("UPDATE spent_totals SET units = 625000 WHERE name = 'alice'")
    connection.close()
    assert run("verify", str(node_dir))[0] == 0
    code, output = run("verify", str(node_dir), "--checkpoint", str(memory))
    assert code == 1
    assert "first bad entry: 5" in output


def test_verify_reads_checkpoints_in_both_note_formats(node_dir: Path, tmp_path: Path) -> None:
    public_key = load_settings_key(node_dir)
    with open_node_ledger(node_dir) as ledger:
        signed = ledger.latest_checkpoint()
    note = signed.to_text()
    key_hash = signed_note.ed25519_key_hash(
        signed.checkpoint.origin, tlog.raw_public_key(public_key)
    )
    assert base64.b64decode(note.rsplit(" ", 1)[1]) == key_hash + signed.signature  # C2SP
    legacy = signed.checkpoint.to_text() + (
        f"\n\u2014 {signed.checkpoint.origin} {base64.b64encode(signed.signature).decode()}\n"
    )
    for number, text in enumerate((note, legacy)):
        memory = tmp_path / f"checkpoint-{number}.txt"
        memory.write_text(text)
        code, output = run("verify", str(node_dir), "--checkpoint", str(memory))
        assert code == 0, output
        assert "1 remembered checkpoint(s) consistent" in output


def test_verify_refuses_a_checkpoint_whose_key_hash_names_another_key(
    node_dir: Path, tmp_path: Path
) -> None:
    with open_node_ledger(node_dir) as ledger:
        signed = ledger.latest_checkpoint()
    other_hash = signed_note.ed25519_key_hash(
        signed.checkpoint.origin, tlog.raw_public_key(generate_ed25519_key().public_key())
    )
    memory = tmp_path / "checkpoint.txt"
    memory.write_text(SignedCheckpoint(signed.checkpoint, signed.signature, other_hash).to_text())
    code, output = run("verify", str(node_dir), "--checkpoint", str(memory))
    assert code == 1
    assert f"remembered checkpoint of size {signed.checkpoint.size} has a bad signature" in output
    assert f"key hash {other_hash.hex()} does not name the pinned ledger key" in output


def load_settings_key(node_dir: Path) -> Ed25519PublicKey:
    return public_key_from_pem(NodePaths(node_dir).ledger_public_key.read_bytes())


def test_verify_with_a_foreign_key_fails(node_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    write_public_file(other, public_key_pem(generate_ed25519_key().public_key()))
    code, output = run("verify", str(node_dir), "--public-key", str(other))
    assert code == 1
    assert "ledger key" in output


def test_export_json_holds_everything_an_auditor_needs(node_dir: Path) -> None:
    code, output = run("export", str(node_dir), "--format", "json")
    assert code == 0, output
    document = json.loads(output)
    public_key = public_key_from_pem(document["public_key_pem"].encode())
    assert document["origin"] == ledger_origin(load_settings(node_dir))
    assert len(document["entries"]) == 6
    leaves = []
    for record in document["entries"]:
        data = {key: value for key, value in record.items() if key != "leaf_hash"}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        assert entry_from_canonical_bytes(canonical).seq == record["seq"]
        leaves.append(tlog.leaf_hash(canonical))
        assert leaves[-1].hex() == record["leaf_hash"]
    assert base64.b64decode(document["entries"][0]["answer"]) == b"answer 0"
    checkpoints = [SignedCheckpoint.from_text(item["text"]) for item in document["checkpoints"]]
    assert [signed.checkpoint.size for signed in checkpoints] == list(range(7))
    key_hash = signed_note.ed25519_key_hash(document["origin"], tlog.raw_public_key(public_key))
    raw_key = base64.b64encode(b"\x01" + tlog.raw_public_key(public_key)).decode()
    assert document["note_verifier_key"] == f"{document['origin']}+{key_hash.hex()}+{raw_key}"
    for signed in checkpoints:
        assert signed.key_hash == key_hash  # C2SP signature lines, naming the ledger key
        assert signed.verify(public_key)
        assert signed.checkpoint.root == tlog.root_from_leaf_hashes(
            leaves[: signed.checkpoint.size]
        )


def test_export_csv_has_one_row_per_entry_with_its_checkpoint_and_key(node_dir: Path) -> None:
    code, output = run("export", str(node_dir), "--format", "csv")
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(output)))
    assert len(rows) == 6
    public_key = public_key_from_raw(base64.b64decode(rows[0]["ledger_public_key"]))
    for row in rows:
        assert int(row["checkpoint_size"]) == int(row["seq"]) + 1
        signed = SignedCheckpoint(
            tlog.Checkpoint(
                row["origin"], int(row["checkpoint_size"]), base64.b64decode(row["checkpoint_root"])
            ),
            base64.b64decode(row["checkpoint_signature"]),
        )
        assert signed.verify(public_key)
    assert rows[3]["purpose"] == "annual fatality report"


def test_commands_on_a_folder_without_a_ledger_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "node.toml").write_text('name = "n"\npartnership = "p"\n')
    code, output = run("export", str(tmp_path / "empty"), "--format", "json")
    assert code == 1
    assert "there is no ledger" in output
