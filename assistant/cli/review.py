"""`assistant eval review export | import`: people rate answers in any spreadsheet; ratings go to SQL.

Export writes the turns to rate as CSV and JSONL; import reads either back. The
parsing and checking of those files is library code (assistant.evals.review); this
module only picks the turns, calls it and prints the outcome. Only the memory
database is opened: no model, no vector store, no extra needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from assistant.cli.support import errors_to_exit, memory_from

__all__ = ["review"]


@click.group("review")
def review() -> None:
    """Human review: export turns to rate, import the ratings (correct / partly / wrong, grounded, comment)."""


@review.command("export")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="File to write: FILE.csv and FILE.jsonl are both written.")  # fmt: skip
@click.option("--user", "user_id", help="Only this user's turns (eval answers are stored as user 'eval').")
@click.option("--session", "session_id", help="Only this session's turns.")
@click.option("--route", type=click.Choice(["local", "large", "abstain"]), help="Only turns answered this way.")
@click.option("--since", type=click.DateTime(), help="Only turns from this date (UTC) on.")
@click.option("--unrated", is_flag=True, help="Only turns nobody has rated yet.")
@click.option("--limit", type=click.IntRange(1), help="At most this many turns (oldest first).")
@click.pass_context
@errors_to_exit
def export(
    ctx: click.Context,
    output: Path,
    user_id: str | None,
    session_id: str | None,
    route: str | None,
    since: datetime | None,
    unrated: bool,
    limit: int | None,
) -> None:
    """Write the turns to rate as CSV and JSONL."""
    from assistant.evals.review import write_review_files

    turns = memory_from(ctx).ratings.turns(
        user_id=user_id,
        session_id=session_id,
        route=route,
        since=since.replace(tzinfo=UTC) if since else None,
        unrated=unrated,
        limit=limit,
    )
    if not turns:
        raise click.ClickException("no turns match; nothing to review (check --user / --session / --route)")
    table, lines = write_review_files(turns, output)
    click.echo(f"{len(turns)} turns to rate: {table} and {lines}")
    click.echo("Fill in rating (correct, partly, wrong), grounded (yes, no) and comment; then `eval review import`.")


@review.command("import")
@click.argument("ratings_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--reviewer", required=True, help="Who rated (a reviewer's new import replaces their earlier ratings).")
@click.pass_context
@errors_to_exit
def import_ratings(ctx: click.Context, ratings_file: Path, reviewer: str) -> None:
    """Store the ratings of a CSV or JSONL file filled in from `eval review export`."""
    from assistant.evals.review import import_ratings as store_ratings

    memory = memory_from(ctx)
    result = store_ratings(memory.ratings, ratings_file, reviewer)
    click.echo(
        f"stored {result.stored} ratings by {reviewer}; {result.unrated} rows left unrated; "
        f"{len(result.problems)} rows refused"
    )
    for problem in result.problems:
        click.secho(str(problem), fg="red", err=True)
    if result.problems:
        raise SystemExit(2)
