"""The one place where the service layer's typed errors become click errors.

Commands wrap their body in `user_errors()` (as a decorator below `@click.command`), so
the error is raised inside the command's own context: an `InvalidArgumentError` is
shown with that command's usage line (exit 2), any other `CoordinatorError` as
`Error: ...` (exit 1). Both carry the service's message unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from coordinator.errors import CoordinatorError, InvalidArgumentError


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except InvalidArgumentError as exc:
        raise click.UsageError(str(exc)) from exc
    except CoordinatorError as exc:
        raise click.ClickException(str(exc)) from exc
