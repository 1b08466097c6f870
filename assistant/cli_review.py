"""`assistant eval review export | import`: people rate answers in any spreadsheet; ratings go to SQL.

Export writes the turns to rate as CSV (for spreadsheets) and JSONL (for scripts),
with empty `rating`, `grounded` and `comment` columns. Import reads either back: each
rated row is stored against its turn; a bad row is reported with its line and field
and the others are still stored; rows left unrated are skipped.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli_support import errors_to_exit, memory_from
from assistant.errors import InputFileError

if TYPE_CHECKING:
    from memory.ratings import ReviewTurn

__all__ = ["review"]

COLUMNS = ["turn_id", "user_id", "session_id", "question", "answer", "sources", "route", "reason",
           "rating", "grounded", "comment"]  # fmt: skip
_YES = {"yes", "y", "true", "1", "grounded"}
_NO = {"no", "n", "false", "0", "not grounded"}


@dataclass(frozen=True)
class _Row:
    where: str  # "line N" of a JSONL file, "row N" of a spreadsheet (the header is row 1)
    values: dict[str, Any]


def _row(turn: ReviewTurn) -> dict[str, Any]:
    cited = "; ".join(
        f"{s.get('file', '')} › {s['location']}" if s.get("location") else str(s.get("file", "")) for s in turn.sources
    )
    return {
        "turn_id": turn.turn_id,
        "user_id": turn.user_id,
        "session_id": turn.session_id,
        "question": turn.question,
        "answer": turn.answer,
        "sources": cited,
        "route": turn.route,
        "reason": turn.reason,
        "rating": "",
        "grounded": "",
        "comment": "",
    }


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
    memory = memory_from(ctx)
    turns = memory.ratings.turns(
        user_id=user_id,
        session_id=session_id,
        route=route,
        since=since.replace(tzinfo=UTC) if since else None,
        unrated=unrated,
        limit=limit,
    )
    if not turns:
        raise click.ClickException("no turns match; nothing to review (check --user / --session / --route)")
    rows = [_row(t) for t in turns]
    output.parent.mkdir(parents=True, exist_ok=True)
    table, lines = output.with_suffix(".csv"), output.with_suffix(".jsonl")
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    click.echo(f"{len(rows)} turns to rate: {table} and {lines}")
    click.echo("Fill in rating (correct, partly, wrong), grounded (yes, no) and comment; then `eval review import`.")


def _read(path: Path) -> list[_Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often add a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(str(path), f"cannot be read as UTF-8 text ({exc})") from None
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    value = {"__error__": f"is not a JSON object ({exc.msg})"}
                rows.append(
                    _Row(f"line {number}", value if isinstance(value, dict) else {"__error__": "is not a JSON object"})
                )
        return rows
    if path.suffix.lower() != ".csv":
        raise InputFileError(str(path), "is neither .csv nor .jsonl; import the file `eval review export` wrote")
    reader = csv.DictReader(io.StringIO(text, newline=""))  # answers span several lines
    if not reader.fieldnames or "turn_id" not in reader.fieldnames or "rating" not in reader.fieldnames:
        raise InputFileError(str(path), "has no 'turn_id' and 'rating' columns; keep the header export wrote")
    return [_Row(f"row {n}", dict(r)) for n, r in enumerate(reader, start=2)]


def _grounded(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"field 'grounded' is {value!r}; use yes or no (or leave it empty)")


def _parse(row: _Row) -> tuple[int, str, bool | None, str] | None:
    """(turn id, rating, grounded, comment), None for an unrated row; ValueError names the field."""
    if "__error__" in row.values:
        raise ValueError(row.values["__error__"])
    rating = str(row.values.get("rating") or "").strip().lower()
    if not rating:
        return None
    from memory.ratings import RATINGS

    if rating not in RATINGS:
        raise ValueError(f"field 'rating' is {rating!r}; use {', '.join(RATINGS)}")
    try:
        turn_id = int(str(row.values.get("turn_id", "")).strip())
    except ValueError:
        raise ValueError(f"field 'turn_id' is {row.values.get('turn_id')!r}; keep the id export wrote") from None
    return turn_id, rating, _grounded(row.values.get("grounded")), str(row.values.get("comment") or "").strip()


@review.command("import")
@click.argument("ratings_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--reviewer", required=True, help="Who rated (a reviewer's new import replaces their earlier ratings).")
@click.pass_context
@errors_to_exit
def import_ratings(ctx: click.Context, ratings_file: Path, reviewer: str) -> None:
    """Store the ratings of a CSV or JSONL file filled in from `eval review export`."""
    memory = memory_from(ctx)
    rows = _read(ratings_file)
    parsed: list[tuple[_Row, tuple[int, str, bool | None, str]]] = []
    problems: list[str] = []
    skipped = 0
    for row in rows:
        try:
            value = _parse(row)
        except ValueError as exc:
            problems.append(f"{ratings_file}, {row.where}: {exc}")
            continue
        if value is None:
            skipped += 1
        else:
            parsed.append((row, value))
    known = memory.ratings.existing_turns([v[0] for _, v in parsed])
    stored = 0
    for row, (turn_id, rating, grounded, comment) in parsed:
        if turn_id not in known:
            problems.append(
                f"{ratings_file}, {row.where}: turn {turn_id} is not in this database (deleted, or another one?)"
            )
            continue
        memory.ratings.rate(turn_id, reviewer, rating, grounded, comment)
        stored += 1
    click.echo(f"stored {stored} ratings by {reviewer}; {skipped} rows left unrated; {len(problems)} rows refused")
    for problem in problems:
        click.secho(problem, fg="red", err=True)
    if problems:
        raise SystemExit(2)
