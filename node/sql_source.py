"""Read one dataset's rows from a database, under the source's limits, into a spooled file.

Every read runs the same steps on one connection:

1. connect (giving up after `connect_timeout_seconds`);
2. guard the session: a read-only transaction and a statement timeout, set by the
   database itself (on PostgreSQL the guard is read back, so a driver that silently
   ignored it cannot slip through);
3. ask for the query's result columns with a query that returns no row, and check them
   against the schema (did-you-mean for misspelt names) before any row is read;
4. stream the rows in batches, refusing more than `row_limit`, each batch written to a
   private spool file as it arrives (node/row_spool.py), so no step holds the table.

PostgreSQL is read through ADBC, which hands over Arrow batches (measured about 3x
faster than psycopg rows for 1M `reports` rows, see bench/bench_sources.py); every other
database through SQLAlchemy and its driver. The spooled file goes to the same validation
and snapshot code as an exported file (`DataStore.ingest_export`); nothing here decides
what is valid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.row_spool import RowSpool
from node.sources_file import SOURCES_EXTRA_HINT, DatabaseSource, SourceError
from node.sql_failures import DriverError, FailureContext, Phase, classify, describe, scrub

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy.engine import URL, Connection

BATCH_ROWS = 65_536
RowsRead = Callable[[int], None]
"""Called with the number of rows read so far, after each batch."""
ColumnCheck = Callable[[Sequence[str]], None]
"""Raises SourceError when the query's columns do not fit the dataset."""
_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}


class _StreamError(Exception):
    """The database failed while rows streamed (pyarrow re-raises it as an ArrowException)."""


@dataclass(frozen=True)
class SqlQuery:
    """One dataset's query on one configured database, and how to talk about it."""

    database_name: str
    database: DatabaseSource
    sql: str
    password: str | None = field(repr=False)
    password_hint: str
    description: str
    """E.g. 'the query for reports on database casework'."""

    def failure_context(self) -> FailureContext:
        return FailureContext(
            database=self.database_name,
            shown_url=self.database.shown_url,
            query=self.description,
            password_hint=self.password_hint,
            connect_timeout_seconds=self.database.connect_timeout_seconds,
            statement_timeout_seconds=self.database.statement_timeout_seconds,
        )


@dataclass(frozen=True)
class SqlRead:
    path: Path
    """The rows, spooled to a private Parquet file (inside the spool's folder)."""
    rows: int
    reader: str
    """'adbc' or 'sqlalchemy'."""
    seconds: float


def reader_for(database: DatabaseSource) -> str:
    """The reader a database uses: ADBC for PostgreSQL unless configured otherwise."""
    if database.reader != "auto":
        return database.reader
    return "adbc" if database.parsed_url.get_backend_name() == "postgresql" else "sqlalchemy"


def read_query(
    query: SqlQuery, check_columns: ColumnCheck, spool: RowSpool, on_rows: RowsRead | None = None
) -> SqlRead:
    """All result rows of `query`, spooled batch by batch; SourceError (never a driver
    error) otherwise. The caller discards the spool."""
    reader = reader_for(query.database)
    started = time.perf_counter()
    read = _read_with_adbc if reader == "adbc" else _read_with_sqlalchemy
    progress = on_rows or (lambda _rows: None)
    phase = [Phase.CONNECT]
    try:
        columns = read(query, check_columns, spool, progress, phase)
        path = spool.finish(columns)
    except SourceError:
        raise
    except ImportError:
        raise SourceError(SOURCES_EXTRA_HINT) from None
    except Exception as exc:
        if not _is_driver_error(exc):
            raise
        driver = DriverError.from_exception(exc)
        detail = scrub(driver.message, query.password)
        message = describe(classify(driver, phase[0]), detail, query.failure_context())
        raise SourceError(message) from None
    seconds = time.perf_counter() - started
    return SqlRead(path=path, rows=spool.rows, reader=reader, seconds=seconds)


def _is_driver_error(exc: Exception) -> bool:
    """A database or driver error (as opposed to a bug here, which must not be disguised)."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError | _StreamError):
        return True
    try:
        from adbc_driver_manager import Error as AdbcError
    except ImportError:
        return False
    return isinstance(exc, AdbcError)


# -- session guards ------------------------------------------------------------------


def guard_statements(dialect: str, is_mariadb: bool, database: DatabaseSource) -> list[str]:
    """SQL that makes this session read-only and time-limited, run before anything else."""
    timeout = database.statement_timeout_seconds
    if dialect == "postgresql":
        statements = ["SET TRANSACTION READ ONLY"] if database.read_only else []
        if timeout:
            statements.append(f"SET statement_timeout = {max(1, round(timeout * 1000))}")
        return statements
    if dialect in ("mysql", "mariadb"):
        statements = []
        if timeout and is_mariadb:
            statements.append(f"SET SESSION max_statement_time = {timeout:g}")
        elif timeout:
            statements.append(f"SET SESSION max_execution_time = {max(1, round(timeout * 1000))}")
        if database.read_only:
            statements.append("START TRANSACTION READ ONLY")
        return statements
    if database.read_only or timeout:
        raise SourceError(
            f"npcs-node can set a read-only transaction and a statement timeout on "
            f"PostgreSQL, MySQL and MariaDB, not on {dialect}. Give the reading account no "
            "write rights and a time limit in the database itself, then set read_only = "
            "false and statement_timeout_seconds = 0 for this database in the sources file."
        )
    return []


_POSTGRES_GUARD_CHECK = (
    "SELECT current_setting('transaction_read_only') AS read_only, "
    "current_setting('statement_timeout') AS statement_timeout"
)


def _check_postgres_guards(read_only: str, database: DatabaseSource) -> None:
    if database.read_only and read_only != "on":
        raise SourceError(
            "the PostgreSQL session did not become read-only (transaction_read_only is "
            f"{read_only!r}); refusing to read. Report this with the driver's version."
        )


def _no_rows(sql: str) -> str:
    """The query, returning its columns but no row (portable: no LIMIT syntax needed)."""
    # The operator's own query from the node's sources file, never input from the network.
    return f"SELECT * FROM ({sql}) npcs_source WHERE 1 = 0"  # noqa: S608


def _too_many_rows(query: SqlQuery) -> SourceError:
    return SourceError(
        f"{query.description} returns more than row_limit = {query.database.row_limit} rows; "
        "narrow the query or raise row_limit in the sources file. The current snapshot stays "
        "in use."
    )


# -- PostgreSQL through ADBC (Arrow batches) ------------------------------------------


def _read_with_adbc(
    query: SqlQuery,
    check_columns: ColumnCheck,
    spool: RowSpool,
    on_rows: RowsRead,
    phase: list[Phase],
) -> list[str]:
    import adbc_driver_postgresql.dbapi as adbc
    import polars as pl
    import pyarrow as pa

    url = query.database.parsed_url
    if url.get_backend_name() != "postgresql":
        raise SourceError(
            f"database {query.database_name}: reader = 'adbc' reads PostgreSQL only; use "
            "reader = 'sqlalchemy' (or 'auto') for this URL."
        )
    with adbc.connect(_libpq_uri(url, query)) as connection, connection.cursor() as cursor:
        phase[0] = Phase.QUERY
        for statement in guard_statements("postgresql", False, query.database):
            cursor.execute(statement)
        cursor.execute(_POSTGRES_GUARD_CHECK)
        guards = cursor.fetchone()
        _check_postgres_guards(str(guards[0]) if guards else "", query.database)
        cursor.execute(_no_rows(query.sql))
        columns = list(cursor.fetch_arrow_table().schema.names)
        check_columns(columns)
        cursor.execute(query.sql)
        reader = cursor.fetch_record_batch()
        rows = 0
        try:
            for batch in reader:
                rows += batch.num_rows
                if rows > query.database.row_limit:
                    raise _too_many_rows(query)
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                spool.add(frame)
                on_rows(rows)
        except (OSError, pa.ArrowException) as exc:
            raise _StreamError(str(exc)) from exc
    return columns


def _libpq_uri(url: URL, query: SqlQuery) -> str:
    """A libpq connection URI: no SQLAlchemy driver name, the password, a connect timeout."""
    options = dict(url.query)
    options.setdefault("connect_timeout", str(query.database.connect_timeout_seconds))
    plain = url.set(drivername="postgresql", query=options)
    if query.password is not None:
        plain = plain.set(password=query.password)
    return plain.render_as_string(hide_password=False)


# -- any database through SQLAlchemy ---------------------------------------------------


def _read_with_sqlalchemy(
    query: SqlQuery,
    check_columns: ColumnCheck,
    spool: RowSpool,
    on_rows: RowsRead,
    phase: list[Phase],
) -> list[str]:
    with _connection(query) as connection:
        phase[0] = Phase.QUERY
        dialect = connection.dialect
        is_mariadb = bool(getattr(dialect, "is_mariadb", False))
        for statement in guard_statements(dialect.name, is_mariadb, query.database):
            connection.exec_driver_sql(statement)
        if dialect.name == "postgresql":
            guards = connection.exec_driver_sql(_POSTGRES_GUARD_CHECK).one()
            _check_postgres_guards(str(guards[0]), query.database)
        columns = list(connection.exec_driver_sql(_no_rows(query.sql)).keys())
        check_columns(columns)
        # A server-side cursor, read BATCH_ROWS at a time (`partitions()` without a size
        # ignores `yield_per` for driver SQL and returns every row as one partition).
        streaming = connection.execution_options(stream_results=True)
        result = streaming.exec_driver_sql(query.sql)
        rows = 0
        try:
            for partition in result.partitions(BATCH_ROWS):
                rows += len(partition)
                if rows > query.database.row_limit:
                    raise _too_many_rows(query)
                spool.add(_frame(partition, columns))
                on_rows(rows)
        finally:
            result.close()  # the server-side cursor, also when refused mid-stream
        connection.rollback()
    return columns


@contextmanager
def _connection(query: SqlQuery) -> Iterator[Connection]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = query.database.parsed_url
    backend = url.get_backend_name()
    if "+" not in url.drivername and backend in _DEFAULT_DRIVERS:
        # No driver named: use the one the `sources` extra installs, not SQLAlchemy's
        # historical default (psycopg2, mysqlclient), which may be absent.
        url = url.set(drivername=f"{backend}+{_DEFAULT_DRIVERS[backend]}")
    if query.password is not None:
        url = url.set(password=query.password)
    connect_args: dict[str, Any] = {}
    if backend in _DEFAULT_DRIVERS:
        connect_args["connect_timeout"] = query.database.connect_timeout_seconds
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _frame(rows: Sequence[Any], columns: list[str]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        [tuple(row) for row in rows], schema=columns, orient="row", infer_schema_length=None
    )
