"""The `assistant` command: parse arguments, load settings, call the library.

One module a product: documents (ingest, reindex, collections), questions (ask,
chat), summarize (a document's or a collection's summary), memory (sessions,
memory, users, escalations, db), info (info, init: where the data lives), serve
(serve, keys) and eval (eval ..., with eval_quality and review). What they share,
and the one place our errors become exit codes, is cli.support; progress draws the
ingest bar, turn_display the status line and a reply, repl the chat loop,
session_ids the ids of new sessions. `serve` and most of `eval` need an extra
(`assistant[server]`, `assistant[eval]`) and say so when it is missing.
"""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path

import click

__all__ = ["cli", "main"]

# Each command is imported when it runs (or `--help` lists it), so that starting one
# command never imports the others' modules.
COMMANDS = {
    "ingest": "documents:ingest",
    "reindex": "documents:reindex",
    "ask": "questions:ask",
    "chat": "questions:chat",
    "summarize": "summarize:summarize",
    "collections": "documents:collections",
    "sessions": "memory:sessions",
    "memory": "memory:memory",
    "users": "memory:users",
    "db": "memory:db",
    "escalations": "memory:escalations",
    "eval": "eval:evaluate",
    "keys": "serve:keys",
    "serve": "serve:serve",
    "info": "info:info",
    "init": "info:init",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported by name when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, name = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(import_module(f"assistant.cli.{module}"), name)
        if cmd_name == "eval" and isinstance(command, click.Group) and "review" not in command.commands:
            from assistant.cli.eval_quality import COMMANDS as EVAL_COMMANDS
            from assistant.cli.review import review

            for subcommand in (*EVAL_COMMANDS, review):
                command.add_command(subcommand)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="assistant", prog_name="assistant")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Where local state lives (ASSISTANT_DATA_DIR; default: the project's .assistant/, else the user "
    "data directory: see assistant info).",
)
@click.option("--chroma-url", help="Use a Chroma server instead of the embedded store (ASSISTANT_CHROMA_URL).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, chroma_url: str | None, verbose: int) -> None:
    """Answer questions from your documents with a small local model.

    State lives in one place: --data-dir or ASSISTANT_DATA_DIR, else the nearest .assistant/ from the
    working directory up (`assistant init` makes one), else the user data directory. `assistant info`
    says which."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])
    ctx.obj = {"data_dir": data_dir, "chroma_url": chroma_url}


def main() -> None:
    cli(prog_name="assistant")
