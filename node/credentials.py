"""Database passwords: from an environment variable or a file only the node's user can read.

Never from node.toml, never from sources.toml, never printed. A password file that
other users can read is refused (as ssh refuses a readable private key): the fix is one
`chmod 600`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from node.sources_file import DatabaseSource, SourceError


def database_password(name: str, source: DatabaseSource, sources_dir: Path) -> str | None:
    """The password for database `name`, or None when it is configured without one."""
    if source.password_env is not None:
        return _from_environment(name, source.password_env)
    if source.password_file is not None:
        path = source.password_file
        return _from_file(name, path if path.is_absolute() else sources_dir / path)
    return None


def _from_environment(name: str, variable: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise SourceError(
            f"databases.{name}.password_env names {variable}, which is not set for this "
            f"process; export it (or set it with EnvironmentFile= in the systemd unit) and "
            "run again."
        )
    return value


def _from_file(name: str, path: Path) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SourceError(
            f"databases.{name}.password_file {path} does not exist; create it with the "
            "password on one line and `chmod 600` it."
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SourceError(f"databases.{name}.password_file {path} is not a regular file.")
    if info.st_mode & 0o077:
        raise SourceError(
            f"databases.{name}.password_file {path} can be read by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}` and run again."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise SourceError(
            f"databases.{name}.password_file {path} is not readable by this user; it must "
            "belong to the user that runs npcs-node."
        ) from None
    return text.rstrip("\r\n")
