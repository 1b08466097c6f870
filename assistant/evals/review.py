"""Human review of answers: the turns to rate as CSV and JSONL, and people's ratings read back.

`write_review_files` writes the turns with empty `rating`, `grounded` and `comment`
columns, as CSV (for spreadsheets) and JSONL (for scripts). `read_ratings` parses and
checks a filled-in file of either kind: each rated row becomes a `Rating`, each bad one
a `RowProblem` naming the file, the line or row and the field; rows left unrated are
counted. `import_ratings` stores the ratings against their turns; a bad row does not
stop the others. Imports only `assistant.errors` and `memory.ratings`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import InputFileError
from memory.ratings import RATINGS, RatingStore, ReviewTurn

__all__ = [
    "COLUMNS",
    "ImportResult",
    "Rating",
    "RatingsFile",
    "RowProblem",
    "import_ratings",
    "read_ratings",
    "review_row",
    "write_review_files",
]

COLUMNS = ["turn_id", "user_id", "session_id", "question", "answer", "sources", "route", "reason",
           "rating", "grounded", "comment"]  # fmt: skip
_YES = {"yes", "y", "true", "1", "grounded"}
_NO = {"no", "n", "false", "0", "not grounded"}


@dataclass(frozen=True)
class Rating:
    """One rated row of a ratings file."""

    where: str  # "line N" of a JSONL file, "row N" of a spreadsheet (the header is row 1)
    turn_id: int
    rating: str  # one of memory.ratings.RATINGS
    grounded: bool | None
    comment: str


@dataclass(frozen=True)
class RowProblem:
    """A row that was refused, and why: `str()` gives "FILE, row N: field 'rating' is ...; use ..."."""

    path: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}, {self.where}: {self.message}"


@dataclass
class RatingsFile:
    path: str
    ratings: list[Rating] = field(default_factory=list)
    unrated: int = 0  # rows with an empty rating: skipped, not refused
    problems: list[RowProblem] = field(default_factory=list)


@dataclass
class ImportResult:
    reviewer: str
    stored: int
    unrated: int
    problems: list[RowProblem]


def review_row(turn: ReviewTurn) -> dict[str, Any]:
    """A turn as a row to rate: the COLUMNS, with the reviewer's three left empty."""
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


def write_review_files(turns: Sequence[ReviewTurn], output: Path) -> tuple[Path, Path]:
    """Write OUTPUT.csv and OUTPUT.jsonl, one row a turn; returns both paths."""
    rows = [review_row(t) for t in turns]
    output.parent.mkdir(parents=True, exist_ok=True)
    table, lines = output.with_suffix(".csv"), output.with_suffix(".jsonl")
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return table, lines


def _rows(path: Path) -> list[tuple[str, dict[str, Any] | None, str]]:
    """(where, values, problem) per row: values None and the problem given for a line that is not an object."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often add a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(str(path), f"cannot be read as UTF-8 text ({exc})") from None
    if path.suffix.lower() == ".jsonl":
        rows: list[tuple[str, dict[str, Any] | None, str]] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    rows.append((f"line {number}", None, f"is not a JSON object ({exc.msg})"))
                    continue
                is_object = isinstance(value, dict)
                rows.append(
                    (f"line {number}", value if is_object else None, "" if is_object else "is not a JSON object")
                )
        return rows
    if path.suffix.lower() != ".csv":
        raise InputFileError(str(path), "is neither .csv nor .jsonl; import the file `eval review export` wrote")
    reader = csv.DictReader(io.StringIO(text, newline=""))  # answers span several lines
    if not reader.fieldnames or "turn_id" not in reader.fieldnames or "rating" not in reader.fieldnames:
        raise InputFileError(str(path), "has no 'turn_id' and 'rating' columns; keep the header export wrote")
    return [(f"row {n}", dict(r), "") for n, r in enumerate(reader, start=2)]


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


def _rating(where: str, values: dict[str, Any]) -> Rating | None:
    """The row's rating, None for an unrated row; ValueError names the field."""
    rating = str(values.get("rating") or "").strip().lower()
    if not rating:
        return None
    if rating not in RATINGS:
        raise ValueError(f"field 'rating' is {rating!r}; use {', '.join(RATINGS)}")
    try:
        turn_id = int(str(values.get("turn_id", "")).strip())
    except ValueError:
        raise ValueError(f"field 'turn_id' is {values.get('turn_id')!r}; keep the id export wrote") from None
    return Rating(where, turn_id, rating, _grounded(values.get("grounded")), str(values.get("comment") or "").strip())


def read_ratings(path: Path) -> RatingsFile:
    """Parse and check a CSV or JSONL file filled in from `write_review_files`.

    A file that cannot be read, or is neither kind, raises InputFileError; a bad row
    is a RowProblem and the other rows are still read."""
    result = RatingsFile(str(path))
    for where, values, problem in _rows(path):
        try:
            if values is None:
                raise ValueError(problem)
            rating = _rating(where, values)
        except ValueError as exc:
            result.problems.append(RowProblem(str(path), where, str(exc)))
            continue
        if rating is None:
            result.unrated += 1
        else:
            result.ratings.append(rating)
    return result


def import_ratings(store: RatingStore, path: Path, reviewer: str) -> ImportResult:
    """Store the ratings of a filled-in file by `reviewer` (replacing their earlier ones of the same turns).

    A rating of a turn that is not in this database is refused like a bad row."""
    parsed = read_ratings(path)
    problems = list(parsed.problems)
    known = store.existing_turns([r.turn_id for r in parsed.ratings])
    stored = 0
    for rating in parsed.ratings:
        if rating.turn_id not in known:
            message = f"turn {rating.turn_id} is not in this database (deleted, or another one?)"
            problems.append(RowProblem(parsed.path, rating.where, message))
            continue
        store.rate(rating.turn_id, reviewer, rating.rating, rating.grounded, rating.comment)
        stored += 1
    return ImportResult(reviewer, stored, parsed.unrated, problems)
