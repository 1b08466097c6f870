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
from pathlib import Path

import click

from assistant.cli.documents import collections, ingest, reindex
from assistant.cli.eval import evaluate
from assistant.cli.eval_quality import COMMANDS as EVAL_COMMANDS
from assistant.cli.info import info, init
from assistant.cli.memory import db, escalations, memory, sessions, users
from assistant.cli.questions import ask, chat
from assistant.cli.review import review
from assistant.cli.serve import keys, serve
from assistant.cli.summarize import summarize

__all__ = ["cli", "main"]


@click.group()
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


for _command in (*EVAL_COMMANDS, review):
    evaluate.add_command(_command)
for _command in (
    ingest,
    reindex,
    ask,
    chat,
    summarize,
    collections,
    sessions,
    memory,
    users,
    db,
    escalations,
    evaluate,
    keys,
    serve,
    info,
    init,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="assistant")
