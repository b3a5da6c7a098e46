"""`npcs demo --database URL`: one jurisdiction is fed from the real PostgreSQL server.

Run as a user runs it (a real `npcs` process that starts real node processes), with one
small jurisdiction. The URL carries a password (PostgreSQL here trusts local clients, so
it is not checked), which must reach the node only through a 0600 password file.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

from support_databases import POSTGRES_URL, postgres_connection, url_for

SCHEMA_PATTERN = re.compile(r"schema (npcs_demo_[0-9a-f]+) \((kept|dropped)")
PASSWORD = "demo-Secret-42"
SMALL = ["--nodes", "1", "--scale", "0.01"]


def npcs_command() -> list[str]:
    script = Path(sys.executable).with_name("npcs")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from coordinator.cli import main; main()"]


def schema_exists(name: str) -> bool:
    with postgres_connection() as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)
        ).fetchone()
    return found is not None


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    with postgres_connection():  # skips (or fails in CI) when the server is unreachable
        pass
    url = url_for(POSTGRES_URL).set(password=PASSWORD).render_as_string(hide_password=False)
    return subprocess.run(
        [*npcs_command(), "demo", *SMALL, "--database", url, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_feeds_a_jurisdiction_from_postgresql_and_says_so(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    completed = run_demo("--workdir", str(workdir))
    match = SCHEMA_PATTERN.search(completed.stdout)
    try:
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert "read from PostgreSQL postgresql://postgres@127.0.0.1" in completed.stderr
        assert "by npcs-node refresh" in completed.stderr
        assert "Database source: north-state read its data from PostgreSQL" in completed.stdout
        assert match is not None
        assert match.group(2) == "kept"
        assert schema_exists(match.group(1))
        node = workdir / "nodes" / "north-state"
        sources = (node / "sources.toml").read_text(encoding="utf-8")
        assert 'password_file = "database.password"' in sources
        assert PASSWORD not in sources + completed.stdout + completed.stderr
        assert stat.S_IMODE((node / "database.password").stat().st_mode) == 0o600
        for dataset in ("incidents", "reports", "workforce", "safety_culture"):
            current = (node / "data" / dataset / "CURRENT").read_text().strip()
            manifest = node / "data" / dataset / "snapshots" / f"{current}.json"
            assert json.loads(manifest.read_text())["source"] == "database agency"
    finally:
        if match is not None:
            with postgres_connection() as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {match.group(1)} CASCADE")


def test_demo_drops_its_schema_when_the_partnership_is_not_kept() -> None:
    completed = run_demo()
    assert completed.returncode == 0, completed.stderr[-3000:]
    match = SCHEMA_PATTERN.search(completed.stdout)
    assert match is not None
    assert match.group(2) == "dropped"
    assert not schema_exists(match.group(1))


def test_demo_refuses_a_database_that_is_not_postgresql() -> None:
    completed = subprocess.run(
        [*npcs_command(), "demo", *SMALL, "--database", "mysql://root@127.0.0.1/test"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert "--database takes a PostgreSQL URL" in completed.stderr
