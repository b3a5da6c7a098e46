"""`npcs-node synth`, `ingest` and `status` end to end through click's CliRunner."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from node.cli import cli


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def synth_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node folder created by `synth` alone (no `init`)."""
    node = tmp_path_factory.mktemp("nodes") / "Small County"
    code, out, err = run(
        "synth", str(node), "--children", "60000", "--years", "2022-2023", "--seed", "4"
    )
    assert code == 0, err
    assert "reports:" in out
    return node


def test_synth_creates_a_minimal_node_folder_with_public_denominators(synth_node: Path) -> None:
    settings = tomllib.loads((synth_node / "node.toml").read_text())
    assert settings["name"] == "small-county"
    assert settings["partnership"] == "demo"
    assert settings["counties"] == ["c001", "c002"]
    assert settings["child_population"] == {"2022": 60000, "2023": 60000}
    populations = json.loads((synth_node / "populations.json").read_text())
    assert populations["source"].startswith("Synthetic")
    for year in ("2022", "2023"):
        for column in ("race_ethnicity", "sex"):
            rows = [r for r in populations["rows"] if (r["year"], r["column"]) == (year, column)]
            assert sum(r["population"] for r in rows) == 60000


def test_status_json_lists_each_dataset_snapshot_with_local_only_dates(synth_node: Path) -> None:
    code, out, _ = run("status", str(synth_node), "--format", "json")
    assert code == 0
    status = json.loads(out)
    assert status["node"] == "small-county"
    assert set(status["datasets"]) == {"incidents", "reports", "workforce", "safety_culture"}
    reports = status["datasets"]["reports"]
    assert reports["rows"] > 1000
    assert reports["rejected"] == 0
    assert reports["snapshot_id"].split("-")[0].startswith("20")
    low, high = reports["local_only"]["date_ranges"]["report_date"]
    assert "2022-01-01" <= low <= high <= "2023-12-31"


def test_status_text_shows_a_row_per_dataset(synth_node: Path) -> None:
    code, out, _ = run("status", str(synth_node))
    assert code == 0
    lines = out.splitlines()
    for dataset in ("incidents", "reports", "workforce", "safety_culture"):
        assert any(line.startswith(dataset) for line in lines), out


def test_synth_is_deterministic_across_node_folders(tmp_path: Path) -> None:
    hashes = []
    for name in ("a", "b"):
        code, out, err = run(
            "synth", str(tmp_path / name), "--children", "20000", "--seed", "9",
            "--dataset", "reports", "--format", "json",
        )  # fmt: skip
        assert code == 0, err
        snapshot_id = json.loads(out)["reports"]["snapshot_id"]
        hashes.append(snapshot_id.split("-")[1])
    assert hashes[0] == hashes[1]


def test_synth_fills_the_empty_settings_that_init_writes(tmp_path: Path) -> None:
    node = tmp_path / "county-b"
    code, _, err = run("init", str(node), "--name", "county-b", "--partnership", "demo")
    assert code == 0, err
    code, _, err = run("synth", str(node), "--children", "30000", "--dataset", "workforce")
    assert code == 0, err
    settings = tomllib.loads((node / "node.toml").read_text())
    assert settings["name"] == "county-b"
    assert settings["counties"] == ["c001"]
    assert settings["child_population"]["2024"] == 30000
    assert settings["budget"]["max_rho_per_query"] == "1"  # the rest is untouched


def test_synth_keeps_the_operators_comments_in_node_toml(tmp_path: Path) -> None:
    node = tmp_path / "county-c"
    code, _, err = run("init", str(node), "--name", "county-c", "--partnership", "demo")
    assert code == 0, err
    settings_file = node / "node.toml"
    written = settings_file.read_text(encoding="utf-8")
    edited = written.replace(
        "allowed_analysts = []",
        "# Approved by the data governance board, 2024-05-02.\n"
        "allowed_analysts = []  # nobody until the agreement is signed",
    )
    assert edited != written
    settings_file.write_text(edited, encoding="utf-8")
    code, _, err = run("synth", str(node), "--children", "30000", "--dataset", "workforce")
    assert code == 0, err
    after = settings_file.read_text(encoding="utf-8")
    assert "# Approved by the data governance board, 2024-05-02.\n" in after
    assert "allowed_analysts = []  # nobody until the agreement is signed\n" in after
    comments = [line for line in edited.splitlines() if line.startswith("#")]
    assert comments == [line for line in after.splitlines() if line.startswith("#")]
    assert tomllib.loads(after)["counties"] == ["c001"]


def test_synth_without_children_and_without_configured_population_says_what_to_pass(
    tmp_path: Path,
) -> None:
    code, _, err = run("synth", str(tmp_path / "x"))
    assert code != 0
    assert "--children" in err
    assert not (tmp_path / "x").exists()  # nothing half-created


def _workforce_csv(path: Path, bad_role_rows: int, good_rows: int) -> Path:
    header = [
        "worker_id", "month", "role", "unit", "tenure_months", "active_cases",
        "new_assignments", "separated", "separation_type",
    ]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(good_rows + bad_role_rows):
            role = "boss" if i < bad_role_rows else "caseworker"
            writer.writerow([f"x{i}", "2024-01-01", role, "intake", 5, 10, 2, "no", "none"])
    return path


def test_ingest_within_the_reject_threshold_warns_and_names_the_reject_report(
    synth_node: Path, tmp_path: Path
) -> None:
    source = _workforce_csv(tmp_path / "export.csv", bad_role_rows=2, good_rows=3)
    lenient = {"NPCS_NODE_INGEST__MAX_REJECTED_FRACTION": "0.4"}
    code, out, err = run("ingest", str(synth_node), "workforce", str(source), env=lenient)
    assert code == 0, err
    assert "3 rows from export.csv" in out
    assert "2 rows rejected" in err
    report = Path(err.split("see ")[1].strip())
    with report.open() as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["row"], r["column"]) for r in rejects] == [("1", "role"), ("2", "role")]
    code, out, _ = run("status", str(synth_node), "--format", "json")
    assert json.loads(out)["datasets"]["workforce"]["rows"] == 3


def test_ingest_over_the_default_strict_threshold_fails_and_keeps_the_current_snapshot(
    synth_node: Path, tmp_path: Path
) -> None:
    before = json.loads(run("status", str(synth_node), "--format", "json")[1])
    source = _workforce_csv(tmp_path / "one-bad.csv", bad_role_rows=1, good_rows=9)
    code, out, err = run("ingest", str(synth_node), "workforce", str(source), "--format", "json")
    assert code == 1
    result = json.loads(out)
    assert (result["snapshot_id"], result["accepted"], result["rejected"]) == (None, 9, 1)
    assert "1 of 10 rows (10%) were rejected" in err
    assert "ingest.max_rejected_fraction" in err
    assert Path(result["reject_report"]).is_file()
    after = json.loads(run("status", str(synth_node), "--format", "json")[1])
    assert after["datasets"]["workforce"] == before["datasets"]["workforce"]


def test_ingest_check_validates_and_reports_but_changes_no_snapshot(
    synth_node: Path, tmp_path: Path
) -> None:
    before = json.loads(run("status", str(synth_node), "--format", "json")[1])
    good = _workforce_csv(tmp_path / "good.csv", bad_role_rows=0, good_rows=4)
    code, out, err = run("ingest", str(synth_node), "workforce", str(good), "--check")
    assert code == 0, err
    assert "check passed: 4 valid rows, 0 rejected" in out
    bad = _workforce_csv(tmp_path / "bad.csv", bad_role_rows=1, good_rows=4)
    code, out, err = run("ingest", str(synth_node), "workforce", str(bad), "--check")
    assert code == 1
    assert "were rejected" in err
    assert "Reject report:" in err
    after = json.loads(run("status", str(synth_node), "--format", "json")[1])
    assert after["datasets"]["workforce"] == before["datasets"]["workforce"]


def test_ingest_of_an_all_bad_file_fails_and_keeps_the_current_snapshot(
    synth_node: Path, tmp_path: Path
) -> None:
    before = json.loads(run("status", str(synth_node), "--format", "json")[1])
    source = _workforce_csv(tmp_path / "bad.csv", bad_role_rows=2, good_rows=0)
    code, out, err = run("ingest", str(synth_node), "workforce", str(source), "--format", "json")
    assert code == 1
    assert json.loads(out)["snapshot_id"] is None
    assert "every row" in err
    assert "Reject report:" in err
    after = json.loads(run("status", str(synth_node), "--format", "json")[1])
    assert after["datasets"]["workforce"] == before["datasets"]["workforce"]


def test_ingest_of_a_file_with_unknown_columns_fails_with_the_column_names(
    synth_node: Path, tmp_path: Path
) -> None:
    source = tmp_path / "odd.parquet"
    pl.DataFrame({"worker_id": ["a"], "salary": [1]}).write_parquet(source)
    code, _, err = run("ingest", str(synth_node), "workforce", str(source))
    assert code == 1
    assert "unknown columns: salary" in err
    assert "missing columns: month" in err


def test_ingest_and_status_outside_a_node_folder_explain_what_to_do(tmp_path: Path) -> None:
    source = _workforce_csv(tmp_path / "export.csv", bad_role_rows=0, good_rows=1)
    code, _, err = run("ingest", str(tmp_path), "workforce", str(source))
    assert code == 1
    assert "npcs-node init" in err
    code, _, err = run("status", str(tmp_path))
    assert code == 1
    assert "node.toml" in err


def test_synth_export_writes_csv_files_that_ingest_accepts_and_stores_nothing(
    tmp_path: Path,
) -> None:
    node = tmp_path / "node"
    code, out, err = run(
        "synth", str(node), "--children", "20000", "--years", "2022-2023",
        "--dataset", "workforce", "--export", str(tmp_path / "export"), "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    exported = json.loads(out)["workforce"]
    assert exported["rows"] > 0
    assert not (node / "data").exists()
    code, out, err = run("ingest", str(node), "workforce", exported["file"], "--check")
    assert code == 0, err
    assert f"check passed: {exported['rows']} valid rows, 0 rejected" in out
