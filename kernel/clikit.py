"""Command-line plumbing shared by the `npcs-node` and `npcs` entry points.

Subcommands are registered by import path and imported only when they run, so
`--help` never pays for gRPC, Polars or OpenDP imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from kernel.command_gc import modules_loaded

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """A click group whose subcommands are `module:attribute` strings, imported on use."""

    def __init__(
        self,
        *args: Any,
        lazy_subcommands: Mapping[str, str] | None = None,
        user_errors: tuple[type[Exception], ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands: dict[str, str] = dict(lazy_subcommands or {})
        self.user_errors = user_errors

    def invoke(self, ctx: click.Context) -> Any:
        """Show errors the user can fix as one line (`Error: ...`, exit 1), not a traceback."""
        try:
            return super().invoke(ctx)
        except self.user_errors as exc:
            raise click.ClickException(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List subcommands with their short help without importing heavy modules.

        Each command module is imported for its help line; command modules keep their
        heavy imports (grpc, polars, opendp) inside functions, so this stays cheap.
        """
        super().format_commands(ctx, formatter)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        modules_loaded()
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command


def text_or_json_option(command: F) -> F:
    """`--format text|json` (as `output_format`): output for people or for scripts."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output for people or for scripts.",
    )(command)
