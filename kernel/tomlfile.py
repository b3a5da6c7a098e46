"""The one way this project writes TOML: tomlkit, so edits keep the operator's comments.

Reading stays with the standard library's `tomllib` at each settings loader; this module
writes new documents and edits existing ones in place (comments, order and formatting of
untouched keys are kept), always through `kernel.files.atomic_write_text`, and checks
that the text loads back before it replaces anything.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.toml_document import TOMLDocument

from kernel.files import PUBLIC_FILE_MODE, atomic_write_text


class TomlFileError(ValueError):
    """A TOML file could not be read or would not load back after an edit."""


def render_toml(values: Mapping[str, Any], *, header: str = "") -> str:
    """A TOML document for `values`, with `header` as leading comment lines."""
    document = tomlkit.document()
    for line in header.splitlines():
        document.add(tomlkit.comment(line.removeprefix("# ").removeprefix("#")))
    if header:
        document.add(tomlkit.nl())
    for key, value in values.items():
        document[key] = value
    return _checked(tomlkit.dumps(document), "the generated document")


def write_toml(
    path: Path, values: Mapping[str, Any], *, header: str = "", new_mode: int = PUBLIC_FILE_MODE
) -> None:
    """Atomically write `values` as a TOML document to `path` (keeping its mode, or
    `new_mode` when it does not exist yet)."""
    atomic_write_text(
        path, render_toml(values, header=header), mode=_mode_of(path, default=new_mode)
    )


def edit_toml(path: Path, edit: Callable[[TOMLDocument], None]) -> None:
    """Apply `edit` to the document at `path` and write it back atomically.

    Comments and the layout of every key that `edit` leaves alone are kept.
    """
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except tomlkit.exceptions.ParseError as exc:
        raise TomlFileError(f"{path} is not valid TOML: {exc}") from None
    edit(document)
    text = _checked(tomlkit.dumps(document), str(path))
    atomic_write_text(path, text, mode=_mode_of(path))


def _checked(text: str, what: str) -> str:
    """Never write a file that would not load back."""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(f"refusing to write {what}: it would not load back ({exc})") from None
    return text


def _mode_of(path: Path, *, default: int = PUBLIC_FILE_MODE) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return default
