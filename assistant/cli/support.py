"""What every `assistant` subcommand shares: errors as exit codes, and building what it needs.

Our errors become one message and an exit code here, in one place: 2 for a user
error (fix the input or a setting, or install a missing extra), 1 for a runtime
failure (a model or a store). Imports only `assistant.errors` and `assistant.extras`
at import time, so `assistant --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

from assistant.errors import AssistantError, UserError
from assistant.extras import MissingExtraError

if TYPE_CHECKING:
    from assistant.core import Assistant
    from assistant.settings import Settings
    from memory.store import SQLMemory

__all__ = [
    "F",
    "assistant_from",
    "errors_to_exit",
    "json_option",
    "memory_from",
    "print_rows",
    "settings_from",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def errors_to_exit(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (AssistantError, MissingExtraError) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2 if isinstance(exc, UserError | MissingExtraError) else 1)

    return wrapper  # type: ignore[return-value]


yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array with every field.")


def print_rows(rows: list[dict[str, Any]], columns: list[str], *, as_json: bool, empty: str) -> None:
    """A list command's output: aligned columns under an upper-case header (like `docker ps`),
    or with `as_json` a JSON array of the whole rows. No rows: `empty` on stderr (and `[]`)."""
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=_json_value, ensure_ascii=False))
        return
    if not rows:
        click.echo(empty, err=True)
        return
    table = [[column.upper() for column in columns]] + [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def _json_value(value: Any) -> Any:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def settings_from(ctx: click.Context) -> Settings:
    from assistant.settings import load_settings

    root = ctx.find_root()
    overrides = {k: v for k, v in (root.obj or {}).items() if v is not None}
    return load_settings(**overrides)


def assistant_from(ctx: click.Context) -> Assistant:
    from assistant.core import build_assistant

    return build_assistant(settings_from(ctx))


def memory_from(ctx: click.Context) -> SQLMemory:
    """Only the memory database: no model, no vector store."""
    from assistant.factory import build_memory

    return build_memory(settings_from(ctx))
