"""Turn a database driver's exception into one message the node's operator can act on.

Drivers differ (psycopg and libpq report SQLSTATEs, PyMySQL reports MySQL error numbers);
the operator only needs to know which of a few things went wrong: the server could not
be reached, it refused the login, the query ran too long, the query tried to write, or
the query itself is wrong. Every message says the current snapshot stays in use, and
the password is scrubbed from whatever the driver said.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

_AUTH_SQLSTATES = frozenset({"28000", "28P01"})
_TIMEOUT_SQLSTATES = frozenset({"57014"})
_READ_ONLY_SQLSTATES = frozenset({"25006"})
_MYSQL_AUTH_ERRORS = frozenset({1044, 1045, 1698})
_MYSQL_TIMEOUT_ERRORS = frozenset({1969, 3024})  # MariaDB max_statement_time; MySQL's
_MYSQL_READ_ONLY_ERRORS = frozenset({1792})
_AUTH_WORDS = ("password authentication failed", "access denied", "authentication failed")
# When only the text survives (an error raised while Arrow batches stream), PostgreSQL's
# own wording identifies these two.
_TIMEOUT_WORDS = ("canceling statement due to statement timeout", "max_statement_time")
_READ_ONLY_WORDS = ("in a read-only transaction",)
_DETAIL_CHARACTERS = 400
KEEPS_SNAPSHOT = "The current snapshot stays in use."


class Phase(StrEnum):
    CONNECT = "connect"
    QUERY = "query"


class Failure(StrEnum):
    UNREACHABLE = "unreachable"
    LOGIN = "login refused"
    TIMEOUT = "statement timeout"
    WRITE = "write refused"
    QUERY = "query failed"


@dataclass(frozen=True)
class DriverError:
    """What a driver said, in the few terms that matter here."""

    message: str
    sqlstate: str | None = None
    mysql_errno: int | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> DriverError:
        """Read SQLSTATE or MySQL errno from a SQLAlchemy, psycopg, PyMySQL or ADBC error."""
        original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the DBAPI error
        sqlstate = getattr(original, "sqlstate", None)
        args: tuple[object, ...] = getattr(original, "args", ())
        errno = args[0] if args and isinstance(args[0], int) else None
        message = str(args[1]) if errno is not None and len(args) > 1 else str(original)
        return cls(message=message, sqlstate=sqlstate, mysql_errno=errno)


def classify(error: DriverError, phase: Phase) -> Failure:
    lowered = error.message.lower()
    if error.sqlstate in _AUTH_SQLSTATES or error.mysql_errno in _MYSQL_AUTH_ERRORS:
        return Failure.LOGIN
    if phase is Phase.CONNECT and any(word in lowered for word in _AUTH_WORDS):
        return Failure.LOGIN
    if phase is Phase.CONNECT:
        return Failure.UNREACHABLE
    if (
        error.sqlstate in _TIMEOUT_SQLSTATES
        or error.mysql_errno in _MYSQL_TIMEOUT_ERRORS
        or any(word in lowered for word in _TIMEOUT_WORDS)
    ):
        return Failure.TIMEOUT
    if (
        error.sqlstate in _READ_ONLY_SQLSTATES
        or error.mysql_errno in _MYSQL_READ_ONLY_ERRORS
        or any(word in lowered for word in _READ_ONLY_WORDS)
    ):
        return Failure.WRITE
    return Failure.QUERY


def scrub(text: str, secret: str | None) -> str:
    """The driver's text without the password, on one line, not too long."""
    if secret:
        text = text.replace(secret, "***")
    one_line = " ".join(text.split())
    if len(one_line) > _DETAIL_CHARACTERS:
        one_line = one_line[:_DETAIL_CHARACTERS] + "..."
    return one_line


@dataclass(frozen=True)
class FailureContext:
    """What the message needs to name: the database, the query, the settings involved."""

    database: str
    shown_url: str
    query: str
    password_hint: str
    connect_timeout_seconds: int
    statement_timeout_seconds: float


def describe(failure: Failure, detail: str, context: FailureContext) -> str:
    database = f"database {context.database} ({context.shown_url})"
    if failure is Failure.UNREACHABLE:
        return (
            f"could not connect to {database}: {_sentence(detail)} Check that the server is "
            "running and reachable from this host within connect_timeout_seconds = "
            f"{context.connect_timeout_seconds}. {KEEPS_SNAPSHOT}"
        )
    if failure is Failure.LOGIN:
        return (
            f"{database} refused the login: {_sentence(detail)} Check the user name in the URL and "
            f"the password ({context.password_hint}). {KEEPS_SNAPSHOT}"
        )
    if failure is Failure.TIMEOUT:
        return (
            f"{context.query} ran longer than statement_timeout_seconds = "
            f"{context.statement_timeout_seconds:g} and the database cancelled it; make the "
            f"query faster or raise the limit in the sources file. {KEEPS_SNAPSHOT}"
        )
    if failure is Failure.WRITE:
        return (
            f"{context.query} tried to write, which the read-only transaction refused: "
            f"{_sentence(detail)} A source query may only read. {KEEPS_SNAPSHOT}"
        )
    return (
        f"{context.query} failed on {database}: {_sentence(detail)} Fix the query in the sources "
        f"file. {KEEPS_SNAPSHOT}"
    )


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else f"{text}."
