"""The `assistant` command: parse arguments, load settings, call the library.

Documents and questions are here; conversations, user memory and the database
schema are in cli_memory. Errors become exit codes in cli_support.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from assistant.cli_eval import evaluate
from assistant.cli_eval_quality import COMMANDS as EVAL_COMMANDS
from assistant.cli_memory import db, escalations, memory, sessions, users
from assistant.cli_review import review
from assistant.cli_serve import keys, serve
from assistant.cli_support import F, assistant_from, errors_to_exit
from assistant.errors import UserError
from chains.route import RequestedRoute


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where local state lives (ASSISTANT_DATA_DIR).")
@click.option("--chroma-url", help="Use a Chroma server instead of the embedded store (ASSISTANT_CHROMA_URL).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, chroma_url: str | None, verbose: int) -> None:
    """Answer questions from your documents with a small local model."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])
    ctx.obj = {"data_dir": data_dir, "chroma_url": chroma_url}


def _progress_bar(label: str) -> Any:
    """A rich progress bar on stderr when it is a terminal: files, chunks per second, time left."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn(f"{label} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _follow(progress: Any) -> Callable[[Any], None]:
    task = progress.add_task("", total=None, rate="")

    def show(event: Any) -> None:
        progress.update(
            task,
            total=event.files_total,
            completed=event.files_done,
            description=Path(event.path).name[:28],
            rate=f"{event.chunks_added} chunks · {event.chunks_per_second:.0f}/s",
        )

    return show


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--collection", "-c", help="Collection to fill (default: the default_collection setting).")
@click.option("--strict", is_flag=True, help="Exit non-zero if any file could not be indexed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@errors_to_exit
def ingest(ctx: click.Context, path: Path, collection: str | None, strict: bool, as_json: bool) -> None:
    """Bring a collection in step with PATH (a file or a folder).

    Only new and changed files are parsed and embedded, files gone from PATH lose their
    chunks, moved files keep theirs. Files that cannot be indexed are listed with the
    reason; the exit code is 2 only when nothing could be indexed (or, with --strict,
    when anything failed).
    """
    bot = assistant_from(ctx)
    with _progress_bar("ingesting") as progress:
        report = bot.ingest(path, collection, on_progress=_follow(progress))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.summary())
        for issue in report.files_failed:
            click.secho(f"  failed  {issue.path}: {issue.reason}", fg="yellow", err=True)
        for issue in report.files_skipped:
            click.echo(f"  skipped {issue.path}: {issue.reason}", err=True)
        for issue in report.files_partial:
            click.echo(f"  partial {issue.path}: {issue.reason}", err=True)
    if report.files_indexed == 0 and not report.files_removed:
        click.secho(f"error: nothing in {path} could be indexed", fg="red", err=True)
        sys.exit(2)
    if strict and report.files_failed:
        sys.exit(2)


@cli.command()
@click.argument("collection")
@click.option("--embedder", "model", help="Model directory (default: the embedding_model setting, or the bundled one).")
@click.option("--backend", type=click.Choice(["onnx-int8", "torch"]), help="Embedder backend (default: the setting).")
@click.pass_context
@errors_to_exit
def reindex(ctx: click.Context, collection: str, model: str | None, backend: str | None) -> None:
    """Re-embed COLLECTION with another embedder, beside the old index, then switch.

    Queries keep being answered from the old index until the new one is complete.
    """
    from retrievers.embedder import EmbedderSpec

    bot = assistant_from(ctx)
    default = bot.settings.embedder_spec
    spec = EmbedderSpec(model or default.model, backend or default.backend)
    with _progress_bar("reindexing") as progress:
        report = bot.reindex(collection, spec, on_progress=_follow(progress))
    click.echo(
        f"{report.collection}: {report.chunks} chunks re-embedded with {report.new_embedder} "
        f"(was {report.old_embedder}) in {report.seconds:.1f}s; now serving the new index"
    )


def _print_reply(reply: Any, streamed: bool) -> None:
    if not streamed:
        click.echo(reply.answer)
    click.echo()
    for number, source in enumerate(reply.sources, start=1):
        click.secho(f"  [{number}] {source.citation}  (score {source.score:.2f})", dim=True)
    flag = " · low confidence" if reply.low_confidence else ""
    who = f" by {reply.model}" if reply.model else ""
    click.secho(f"  route: {reply.route}{who}{flag} — {reply.reason}", dim=True)


_turn_options = [
    click.option("--collection", "-c", help="Collection to answer from."),
    click.option("--user", "user_id", default="default", show_default=True, help="Whose conversation this is."),
    click.option("--session", "session_id", default="default", show_default=True, help="Conversation id."),
    click.option(
        "--route",
        type=click.Choice(["auto", "local", "large"]),
        default="auto",
        show_default=True,
        help="auto: the router decides from the evidence; local: never the large model; large: always it.",
    ),
]


def turn_options(func: F) -> F:
    for option in reversed(_turn_options):
        func = option(func)
    return func


@cli.command()
@click.argument("question")
@turn_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole reply as JSON.")
@click.pass_context
@errors_to_exit
def ask(
    ctx: click.Context,
    question: str,
    collection: str | None,
    user_id: str,
    session_id: str,
    route: RequestedRoute,
    as_json: bool,
) -> None:
    """Ask one question."""
    bot = assistant_from(ctx)
    reply = bot.ask(question, user_id=user_id, session_id=session_id, collection=collection, route=route)
    if as_json:
        click.echo(json.dumps(reply.to_dict(), indent=2, default=str))
    else:
        _print_reply(reply, streamed=False)


@cli.command()
@turn_options
@click.pass_context
@errors_to_exit
def chat(ctx: click.Context, collection: str | None, user_id: str, session_id: str, route: RequestedRoute) -> None:
    """Chat in the terminal; answers stream as they are generated. Ctrl-D quits."""
    bot = assistant_from(ctx)
    click.secho("Ask about your documents (Ctrl-D to quit).", dim=True)
    while True:
        try:
            question = click.prompt("you", prompt_suffix="> ")
        except (EOFError, click.Abort):
            click.echo()
            return
        try:
            click.echo("assistant> ", nl=False)
            turn = bot.stream(question, user_id=user_id, session_id=session_id, collection=collection, route=route)
            for chunk in turn:
                click.echo(chunk.text, nl=False)
                if chunk.reply is not None:
                    click.echo()
                    _print_reply(chunk.reply, streamed=True)
        except UserError as exc:
            click.secho(f"\nerror: {exc}", fg="red", err=True)


@cli.group(invoke_without_command=True)
@click.pass_context
def collections(ctx: click.Context) -> None:
    """List, create, describe, check and delete collections (no subcommand: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(collections_list)


@collections.command("list")
@click.pass_context
@errors_to_exit
def collections_list(ctx: click.Context) -> None:
    bot = assistant_from(ctx)
    for name in bot.collections():
        info = bot.describe_collection(name)
        click.echo(f"{name}\t{info.documents} documents\t{info.chunks} chunks\t{info.embedder}")


@collections.command("create")
@click.argument("name")
@click.option("--embedder", "model", help="Model directory (default: the embedding_model setting).")
@click.option("--backend", type=click.Choice(["onnx-int8", "torch"]), help="Embedder backend.")
@click.option("--local-only", is_flag=True, help="Never send this collection's questions to a large model.")
@click.pass_context
@errors_to_exit
def collections_create(ctx: click.Context, name: str, model: str | None, backend: str | None, local_only: bool) -> None:
    from retrievers.embedder import EmbedderSpec

    bot = assistant_from(ctx)
    default = bot.settings.embedder_spec
    spec = EmbedderSpec(model or default.model, backend or default.backend)
    info = bot.create_collection(name, spec, local_only=local_only)
    private = ", local-only" if info.local_only else ""
    click.echo(f"created {info.name} (embedder {info.embedder}, dimension {info.dimension}{private})")


@collections.command("privacy")
@click.argument("name")
@click.option("--local-only/--shared", required=True, help="local-only: never escalated; shared: may be.")
@click.pass_context
@errors_to_exit
def collections_privacy(ctx: click.Context, name: str, local_only: bool) -> None:
    """Mark a collection local-only (its questions never reach a large model) or shared."""
    info = assistant_from(ctx).set_local_only(name, local_only)
    click.echo(f"{info.name}: {'local-only' if info.local_only else 'shared (may be escalated)'}")


@collections.command("describe")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@errors_to_exit
def collections_describe(ctx: click.Context, name: str, as_json: bool) -> None:
    info = assistant_from(ctx).describe_collection(name)
    fields = {
        "name": info.name,
        "documents": info.documents,
        "chunks": info.chunks,
        "size_bytes": info.bytes,
        "embedder": info.embedder,
        "dimension": info.dimension,
        "normalized": info.normalized,
        "created": info.created_at.isoformat(timespec="seconds"),
        "updated": info.updated_at.isoformat(timespec="seconds"),
        "reindexing": info.reindexing,
        "local_only": info.local_only,
    }
    if as_json:
        click.echo(json.dumps(fields, indent=2))
    else:
        for key, value in fields.items():
            click.echo(f"{key:>11}: {value}")


@collections.command("check")
@click.argument("name")
@click.pass_context
@errors_to_exit
def collections_check(ctx: click.Context, name: str) -> None:
    """Compare the SQL catalog with the vector store, chunk by chunk."""
    check = assistant_from(ctx).index.check(name)
    click.echo(
        f"{name}: {check.live} chunks; {len(check.missing_in_chroma)} missing in Chroma, "
        f"{len(check.orphans_in_chroma)} orphans in Chroma, {len(check.unfinished_in_sql)} unfinished in SQL"
    )
    if check.writer:
        click.echo(f"{check.writer} is writing {name} now: check again once it is done", err=True)
    if check.interrupted:
        click.echo(
            f"an ingest into {name} was interrupted: run it again (assistant ingest PATH -c {name}); "
            "it writes what is missing and cleans up the rest",
            err=True,
        )
    if check.needs_reindex:
        click.echo(f"rebuild its vectors from the catalog with: assistant reindex {name}", err=True)
    if not check.consistent:
        sys.exit(1)


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@errors_to_exit
def collections_delete(ctx: click.Context, name: str, yes: bool) -> None:
    bot = assistant_from(ctx)
    info = bot.describe_collection(name)
    if not yes:
        click.confirm(f"delete {name} ({info.documents} documents, {info.chunks} chunks)?", abort=True)
    bot.delete_collection(name)
    click.echo(f"deleted collection {name}")


for _command in (*EVAL_COMMANDS, review):
    evaluate.add_command(_command)
for _group in (sessions, memory, users, db, escalations, evaluate, keys, serve):
    cli.add_command(_group)


def main() -> None:
    cli(prog_name="assistant")


if __name__ == "__main__":
    main()
