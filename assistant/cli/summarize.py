"""`assistant summarize FILE | -c NAME`: a document's or a collection's summary, every sentence cited.

Prints the summary sentences with [n] markers and the numbered citations they point
to, then where it came from (stored earlier, or a file read for this request only).
A status line shows on a terminal while the model works. Errors (no such document or
collection, with the closest names) become exit code 2 in cli.support.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.support import assistant_from, errors_to_exit

if TYPE_CHECKING:
    from assistant.summaries import SummaryReport

__all__ = ["summarize"]


@click.command()
@click.argument("target", metavar="[FILE]", required=False)
@click.option("--collection", "-c", help="The collection the document is in; alone: summarise the whole collection.")
@click.option("--focus", help='What the summary should be about ("obligations", "fees").')
@click.option("--refresh", is_flag=True, help="Make the summary again instead of showing the stored one.")
@click.option("--user", "user_id", default="default", show_default=True, help="Whose large-model budget a call uses.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON, every sentence with its citation.")
@click.pass_context
@errors_to_exit
def summarize(
    ctx: click.Context,
    target: str | None,
    collection: str | None,
    focus: str | None,
    refresh: bool,
    user_id: str,
    as_json: bool,
) -> None:
    """Summarise FILE (a document as its answers cite it, e.g. policy.md, or the path of an
    ingested file), or with -c NAME alone the whole collection.

    Every sentence carries its citation ("policy.md › Leave"). A summary is stored with its
    document and shown again until the document changes; --refresh makes it again. A file
    that was never ingested is read and summarised, not stored.
    """
    from assistant.cli.turn_display import StatusLine

    if not target and not collection:
        raise click.UsageError("name a document (FILE) or a collection (-c NAME)")
    bot = assistant_from(ctx)
    status = StatusLine(sys.stderr if sys.stderr.isatty() else None)
    status.show(f"summarizing {target or collection}")
    try:
        report = bot.summary_report(target, collection=collection, focus=focus, refresh=refresh, user_id=user_id)
    finally:
        status.clear()
    if as_json:
        click.echo(json.dumps(_as_json(report), indent=2, ensure_ascii=False))
        return
    text = report.summary.text()
    if not text:
        click.echo(f"{report.target}: nothing in it could be summarised with a backed sentence.")
    else:
        click.echo(text)
    note = _origin(report)
    if note:
        click.secho(f"\n{note}", dim=True)


def _origin(report: SummaryReport) -> str:
    if not report.ingested:
        return f"({report.target} is in no collection: summarised from the file, not stored; ingest it to keep it)"
    if report.stored and report.created_at is not None:
        made = report.created_at.astimezone(UTC)
        return f"(stored summary from {made:%Y-%m-%d %H:%M} UTC; --refresh rebuilds)"
    return ""


def _as_json(report: SummaryReport) -> dict[str, Any]:
    summary = report.summary
    return {
        "target": report.target,
        "collection": report.collection,
        "document": report.document,
        "focus": summary.focus,
        "stored": report.stored,
        "created_at": report.created_at.isoformat(timespec="seconds") if report.created_at else None,
        "sentences": [
            {
                "text": s.text,
                "citation": s.citation,
                "section": s.section,
                "supported": s.supported,
                "model": s.model,
            }
            for s in summary.sentences
        ],
        "models": summary.models,
        "escalated": [{"section": i, "reason": why} for i, why in summary.escalated],
        "text": summary.text(),
    }
