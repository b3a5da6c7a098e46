"""`npcs demo --database URL`: one jurisdiction reads its case data from PostgreSQL.

The demo plays the agency's database administrator and the jurisdiction's IT:

1. `npcs-node synth DIR --export FOLDER` writes the jurisdiction's synthetic records as
   CSV files (the node generates them; the coordinator never imports Polars);
2. the "agency database" gets them: a fresh PostgreSQL schema with one typed table per
   dataset (column types from the public schema), filled with COPY;
3. IT writes `sources.toml` (one query per dataset; a password in the URL goes to a 0600
   file the sources file names, never into sources.toml) and runs the real
   `npcs-node refresh DIR --format json` as a subprocess.

The schema is dropped when the demo ends, unless the partnership is kept.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kernel.files import PRIVATE_FILE_MODE, atomic_write_text
from privacy.schema import PARTNERSHIP_SCHEMA, ColumnKind

RunNode = Callable[[Sequence[str], Path], str]
"""Runs `npcs-node ARGS`, logging to the given file; returns stdout (raises on failure)."""

_SQL_TYPES = {
    ColumnKind.IDENTIFIER: "text",
    ColumnKind.CATEGORICAL: "text",
    ColumnKind.BOOLEAN: "boolean",
    ColumnKind.INTEGER: "integer",
    ColumnKind.FLOAT: "double precision",
    ColumnKind.DATE: "date",
}
PASSWORD_FILE = "database.password"  # noqa: S105 - a file name; the file holds the secret


class DatabaseFeedError(Exception):
    """The demo's database cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class DatabaseFeed:
    """A PostgreSQL database the demo fills for one jurisdiction, read by `npcs-node refresh`."""

    url: str
    """As given: `postgresql://user[:password]@host:port/database`."""
    schema: str

    @classmethod
    def for_url(cls, url: str) -> DatabaseFeed:
        scheme = urlsplit(url).scheme
        if scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise DatabaseFeedError(
                f"--database takes a PostgreSQL URL (postgresql://user@host:5432/database), "
                f"not {scheme or 'this'}:// ..."
            )
        return cls(url=url, schema=f"npcs_demo_{secrets.token_hex(4)}")

    @property
    def shown_url(self) -> str:
        """The URL without its password, safe to print and to put in sources.toml."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + host
        netloc += f":{parts.port}" if parts.port else ""
        scheme = "postgresql"  # the node picks its own PostgreSQL reader
        return urlunsplit((scheme, netloc, parts.path, parts.query, ""))

    @property
    def password(self) -> str | None:
        return urlsplit(self.url).password

    def feed(
        self, root: Path, run_node: RunNode, log: Path, synth_args: Sequence[str]
    ) -> dict[str, int]:
        """Fill the database for the node at `root` and refresh it; rows stored per dataset."""
        export = root / "agency-export"
        exported = json.loads(
            run_node(
                ["synth", str(root), *synth_args, "--export", str(export), "--format", "json"], log
            )
        )
        self._load(export, list(exported))
        for csv in export.glob("*.csv"):  # the agency's copy lives in its database now
            csv.unlink()
        export.rmdir()
        self._write_sources(root, list(exported))
        outcomes = json.loads(run_node(["refresh", str(root), "--format", "json"], log))
        return {outcome["dataset"]: int(outcome["accepted"]) for outcome in outcomes}

    def drop(self) -> None:
        """Remove the demo's schema and everything in it."""
        with self._connect() as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    # -- internals ------------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise DatabaseFeedError(
                "--database needs the PostgreSQL driver of the `sources` install extra: "
                "pip install 'npcs-federation[sources]'"
            ) from None
        parts = urlsplit(self.url)
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            detail = " ".join(str(exc).split())
            if self.password:
                detail = detail.replace(self.password, "***")
            raise DatabaseFeedError(
                f"could not connect to {self.shown_url}: {detail}. Check the URL and that "
                "the server is running."
            ) from None

    def _load(self, export: Path, datasets: list[str]) -> None:
        with self._connect() as connection:
            connection.execute(f"CREATE SCHEMA {self.schema}")
            for dataset in datasets:
                path = export / f"{dataset}.csv"
                header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
                spec = PARTNERSHIP_SCHEMA.dataset(dataset)
                columns = ", ".join(
                    f"{name} {_SQL_TYPES[spec.column(name).kind]}" for name in header
                )
                connection.execute(f"CREATE TABLE {self.schema}.{dataset} ({columns})")
                copy = f"COPY {self.schema}.{dataset} FROM STDIN (FORMAT csv, HEADER true)"
                with connection.cursor().copy(copy) as stream, path.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        stream.write(block)

    def _write_sources(self, root: Path, datasets: list[str]) -> None:
        lines = [
            "# Which query feeds each dataset (`npcs-node refresh`); written by `npcs demo`.",
            "[databases.agency]",
            f"url = {json.dumps(self.shown_url)}",
        ]
        if self.password is not None:
            secret = root / PASSWORD_FILE
            secret.touch(mode=0o600)
            secret.chmod(0o600)
            secret.write_text(self.password + "\n", encoding="utf-8")
            lines.append(f"password_file = {json.dumps(PASSWORD_FILE)}")
        for dataset in datasets:
            query = f"SELECT * FROM {self.schema}.{dataset}"  # noqa: S608 - names made here
            lines += [
                "",
                f"[datasets.{dataset}]",
                'database = "agency"',
                f"query = {json.dumps(query)}",
            ]
        # Inside the node folder: owner only, like every node file (serve checks it).
        atomic_write_text(root / "sources.toml", "\n".join(lines) + "\n", mode=PRIVATE_FILE_MODE)
