"""The real PostgreSQL and MariaDB servers that database-source tests read from.

Each test module creates its own schema (PostgreSQL) or database (MariaDB) with a random
name, loads synthetic tables into it with the drivers of the `sources` extra, and drops
it afterwards. When a server cannot be reached the tests skip with the reason, unless
NPCS_REQUIRE_DATABASES=1 (set by .ci/run), where a missing server fails them instead.

Servers (override with NPCS_TEST_POSTGRES_URL / NPCS_TEST_MARIADB_URL, SQLAlchemy syntax):
PostgreSQL at 127.0.0.1:5432 (trust authentication, database `test`) and MariaDB at
127.0.0.1:3306 (root with no password, database `test`).
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import polars as pl
import pytest
from sqlalchemy.engine import URL, make_url

POSTGRES_URL = os.environ.get("NPCS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("NPCS_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
REQUIRE_VARIABLE = "NPCS_REQUIRE_DATABASES"

_POSTGRES_TYPES = (
    (pl.String, "text"),
    (pl.Date, "date"),
    (pl.Boolean, "boolean"),
    (pl.Int64, "bigint"),
)
_MARIADB_TYPES = (
    (pl.String, "varchar(64)"),
    (pl.Date, "date"),
    (pl.Boolean, "boolean"),
    (pl.Int64, "bigint"),
)


def _sql_type(dtype: pl.DataType, types: tuple[tuple[type[pl.DataType], str], ...]) -> str:
    for polars_type, sql_type in types:
        if dtype == polars_type:
            return sql_type
    raise TypeError(f"no SQL type for {dtype}")


def unavailable(kind: str, url: str, error: Exception) -> NoReturn:
    """Skip (or, where databases are required, fail) because a server cannot be used."""
    shown = make_url(url).render_as_string(hide_password=True)
    reason = (
        f"{kind} at {shown} is not reachable ({type(error).__name__}: "
        f"{' '.join(str(error).split())[:200]}); database-source tests need it"
    )
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_VARIABLE}=1 requires it.")
    pytest.skip(reason)


def scratch_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@contextmanager
def _connection(
    kind: str,
    url: str,
    connect: Callable[..., Any],
    failure: type[Exception],
    *,
    port: int,
    database_keyword: str,
    database: str | None = None,
) -> Iterator[Any]:
    """A driver's autocommit connection to `url` (on `port` when the url names none; to
    `database` when given, else the url's, passed as the driver's `database_keyword`),
    closed afterwards; the test skips (or fails) when it cannot connect."""
    parsed = make_url(url)
    try:
        connection = connect(
            host=parsed.host,
            port=parsed.port or port,
            user=parsed.username,
            password=parsed.password or "",
            connect_timeout=5,
            autocommit=True,
            **{database_keyword: database or parsed.database},
        )
    except failure as error:
        unavailable(kind, url, error)
    with connection:
        yield connection


@contextmanager
def _scratch(
    execute: Callable[[str], object], kind: str, *, drop_options: str = ""
) -> Iterator[str]:
    """A fresh `kind` (SCHEMA, DATABASE) with a random name, dropped afterwards."""
    name = scratch_name("npcs_test")
    execute(f"CREATE {kind} {name}")
    try:
        yield name
    finally:
        execute(f"DROP {kind} {name}{drop_options}")


# -- PostgreSQL -------------------------------------------------------------------------


@contextmanager
def postgres_connection(url: str = POSTGRES_URL) -> Iterator[Any]:
    import psycopg

    with _connection(
        "PostgreSQL",
        url,
        psycopg.connect,
        psycopg.OperationalError,
        port=5432,
        database_keyword="dbname",
    ) as connection:
        yield connection


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema, dropped with everything in it afterwards."""
    with (
        postgres_connection() as connection,
        _scratch(connection.execute, "SCHEMA", drop_options=" CASCADE") as name,
    ):
        yield name


def load_postgres_table(schema: str, table: str, frame: pl.DataFrame) -> None:
    """Create `schema.table` with the frame's columns and COPY the rows in."""
    columns = ", ".join(
        f"{name} {_sql_type(dtype, _POSTGRES_TYPES)}" for name, dtype in frame.schema.items()
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    with postgres_connection() as connection:
        connection.execute(f"CREATE TABLE {schema}.{table} ({columns})")
        copy = f"COPY {schema}.{table} FROM STDIN (FORMAT csv, HEADER true)"
        with connection.cursor().copy(copy) as stream:
            stream.write(buffer.getvalue())


# -- MariaDB ----------------------------------------------------------------------------


@contextmanager
def mariadb_connection(url: str = MARIADB_URL, database: str | None = None) -> Iterator[Any]:
    import pymysql

    with _connection(
        "MariaDB",
        url,
        pymysql.connect,
        pymysql.MySQLError,
        port=3306,
        database_keyword="database",
        database=database,
    ) as connection:
        yield connection


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A fresh database, dropped afterwards."""
    with (
        mariadb_connection() as connection,
        _scratch(connection.cursor().execute, "DATABASE") as name,
    ):
        yield name


@contextmanager
def mariadb_reader(database: str) -> Iterator[tuple[str, str]]:
    """A user that may only SELECT from `database`, with a random password; dropped after."""
    user, password = scratch_name("npcs_reader"), secrets.token_urlsafe(16)
    with mariadb_connection() as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cursor.execute(f"GRANT SELECT ON {database}.* TO %s@'%%'", (user,))
        try:
            yield user, password
        finally:
            cursor.execute("DROP USER %s@'%%'", (user,))


def load_mariadb_table(database: str, table: str, frame: pl.DataFrame) -> None:
    columns = ", ".join(
        f"{name} {_sql_type(dtype, _MARIADB_TYPES)}" for name, dtype in frame.schema.items()
    )
    marks = ", ".join(["%s"] * frame.width)
    with mariadb_connection(database=database) as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE TABLE {table} ({columns})")
        cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", frame.rows())


def url_for(base: str, *, database: str | None = None, username: str | None = None) -> URL:
    url = make_url(base)
    if database is not None:
        url = url.set(database=database)
    if username is not None:
        url = url.set(username=username)
    return url
