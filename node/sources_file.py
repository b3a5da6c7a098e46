"""The sources file: which SQL query on which database feeds each dataset.

`sources.toml` in the node folder (or a file named with `--sources`)::

    [databases.casework]                        # any name; datasets refer to it
    url = "postgresql://npcs_reader@db.agency.example:5432/ccwis"
    password_env = "NPCS_CASEWORK_PASSWORD"      # or password_file = "casework.password"
    statement_timeout_seconds = 600             # the database cancels a longer query
    row_limit = 5000000                         # more rows than this: refused
    read_only = true                            # a read-only transaction

    [datasets.reports]
    database = "casework"
    query = '''
    SELECT r.report_id, r.child_id, ... AS county
    FROM reporting.cps_reports r
    '''

URLs use SQLAlchemy's syntax (`dialect[+driver]://user@host:port/database?options`).
Passwords never live in this file or in node.toml: a URL with a password is refused. The
password comes from an environment variable or from a file only the node's user can read
(mode 0600); see `node.credentials`.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kernel.extras import install_command
from node.errors import NodeSetupError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SOURCES_EXTRA_HINT = (
    f"database sources need the `sources` install extra: {install_command('sources')} "
    """(from a source checkout: pip install ".[sources]")"""
)


class SourceError(NodeSetupError):
    """A database source cannot be used as configured; the message says what to change."""


class DatabaseSource(BaseModel):
    """One database the node reads from, and the limits every read on it runs under."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="SQLAlchemy URL without a password.")
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    password_file: Path | None = Field(
        None, description="File holding the password, mode 0600; relative to the sources file."
    )
    read_only: bool = Field(True, description="Read inside a read-only transaction.")
    statement_timeout_seconds: float = Field(
        600.0, ge=0, description="The database cancels a query running longer; 0: no limit."
    )
    connect_timeout_seconds: int = Field(10, ge=1, description="Give up connecting after this.")
    row_limit: int = Field(10_000_000, ge=1, description="Refuse a query returning more rows.")
    reader: Literal["auto", "adbc", "sqlalchemy"] = Field(
        "auto",
        description="auto: Arrow (ADBC) for PostgreSQL, SQLAlchemy with the driver otherwise.",
    )

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, url: str) -> str:
        parsed = parse_url(url)
        if parsed.password is not None or "password" in parsed.query:
            # Never repeat the URL: it holds the secret.
            raise ValueError(
                "the URL contains a password; remove it and give the password with "
                'password_env = "VARIABLE" or password_file = "FILE" (mode 0600)'
            )
        return url

    @model_validator(mode="after")
    def _one_password_source(self) -> DatabaseSource:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        return self

    @property
    def parsed_url(self) -> URL:
        return parse_url(self.url)

    @property
    def shown_url(self) -> str:
        """The URL as safe to print (it never holds a password; masked all the same)."""
        return self.parsed_url.render_as_string(hide_password=True)


class DatasetSource(BaseModel):
    """The one query whose result rows become a dataset's next snapshot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database: str = Field(description="A name under [databases].")
    query: str = Field(min_length=1, description="One SELECT returning the schema's columns.")

    @field_validator("query")
    @classmethod
    def _one_statement(cls, query: str) -> str:
        text = query.strip().rstrip(";").strip()
        if not text:
            raise ValueError("the query is empty")
        if ";" in text:
            raise ValueError("give one SELECT statement, without ';' inside it")
        return text


class SourcesFile(BaseModel):
    """Every database and every dataset mapping of one node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    databases: dict[str, DatabaseSource] = Field(default_factory=dict)
    datasets: dict[str, DatasetSource] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_databases(self) -> SourcesFile:
        for name, mapping in self.datasets.items():
            if mapping.database not in self.databases:
                raise ValueError(
                    f"datasets.{name}.database is {mapping.database!r}, which is not under "
                    f"[databases]{did_you_mean(mapping.database, list(self.databases))}"
                )
        return self


def parse_url(url: str) -> URL:
    """A SQLAlchemy URL, or a clear error (which never repeats the URL)."""
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:
        raise SourceError(SOURCES_EXTRA_HINT) from None
    try:
        return make_url(url)
    except ArgumentError:
        raise ValueError(
            "not a database URL; write dialect[+driver]://user@host:port/database, "
            "e.g. postgresql://npcs_reader@db.example:5432/ccwis"
        ) from None


def did_you_mean(word: str, candidates: list[str]) -> str:
    """' (did you mean X?)' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def load_sources(path: Path) -> SourcesFile:
    """Read and check a sources file; every problem is a SourceError naming the field."""
    if not path.is_file():
        raise SourceError(
            f"{path} does not exist: write it to map each dataset to a database query "
            "(see the deploy guide, section 'Feeding the node from a database')."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{path} is not valid TOML ({exc}); fix the file.") from None
    try:
        return SourcesFile.model_validate(raw)
    except ValidationError as exc:
        # Only the location and the message: pydantic's own text repeats the input value,
        # which for a URL may be a secret.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise SourceError(f"{path} is not valid: {problems}. Fix it and run again.") from None
