"""`assistant ingest | reindex | collections ...`: documents into collections, and collections kept.

Each command parses its arguments and calls the Assistant; long work shows a
progress bar on stderr. Errors become exit codes in cli.support.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.progress import follow, progress_bar
from assistant.cli.support import assistant_from, errors_to_exit, json_option, print_rows, yes_option

if TYPE_CHECKING:
    from retrievers.catalog import CollectionInfo

__all__ = ["collections", "ingest", "reindex"]


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--collection", "-c", help="Collection to fill (default: the only collection, else the default_collection setting)."
)
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
    with progress_bar("ingesting") as progress:
        report = bot.ingest(path, collection, on_progress=follow(progress))
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


@click.command()
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
    with progress_bar("reindexing") as progress:
        report = bot.reindex(collection, spec, on_progress=follow(progress))
    click.echo(
        f"{report.collection}: {report.chunks} chunks re-embedded with {report.new_embedder} "
        f"(was {report.old_embedder}) in {report.seconds:.1f}s; now serving the new index"
    )


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def collections(ctx: click.Context, as_json: bool) -> None:
    """List, create, describe, check and delete collections (no subcommand: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(collections_list, as_json=as_json)


@collections.command("list")
@json_option
@click.pass_context
@errors_to_exit
def collections_list(ctx: click.Context, as_json: bool) -> None:
    """Every collection with its documents, chunks and embedder."""
    bot = assistant_from(ctx)
    rows = [_collection_row(bot.describe_collection(name)) for name in bot.collections()]
    print_rows(
        rows,
        ["name", "documents", "chunks", "embedder", "local_only"],
        as_json=as_json,
        empty="no collections yet. Create one with: assistant ingest PATH --collection NAME",
    )


def _collection_row(info: CollectionInfo) -> dict[str, Any]:
    return {
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
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@errors_to_exit
def collections_describe(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """A collection's size, embedder, dates and privacy (no NAME: the only collection, or default_collection)."""
    fields = _collection_row(assistant_from(ctx).describe_collection(name))
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
    check = assistant_from(ctx).check_collection(name)
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
@yes_option
@click.pass_context
@errors_to_exit
def collections_delete(ctx: click.Context, name: str, yes: bool) -> None:
    bot = assistant_from(ctx)
    info = bot.describe_collection(name)
    if not yes:
        click.confirm(f"delete {name} ({info.documents} documents, {info.chunks} chunks)?", abort=True)
    bot.delete_collection(name)
    click.echo(f"deleted collection {name}")
