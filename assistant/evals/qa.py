"""Labelled question files: one JSON object per line.

    {"question": "What does work_mem control?", "answers": ["sort", "hash"], "source": "runtime-config-resource.html"}

`answers`: strings any one of which, found in an answer (case and spacing ignored),
makes it correct; an empty list marks a question the documents do not answer.
`source` (optional): the file that holds the answer. `kind` (optional): a label such
as "plain", "identifier" or "howto"; reports break results down by it. `reference`
(optional): a whole reference answer, which BLEU, chrF and ROUGE compare answers to
(without it they compare to the `answers` strings). Blank lines and lines starting
with # are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import InputFileError

__all__ = ["QAItem", "is_correct", "json_lines", "load_qa"]


@dataclass(frozen=True)
class QAItem:
    question: str
    answers: tuple[str, ...]
    source: str | None = None
    line: int = 0
    kind: str | None = None
    reference: str | None = None

    @property
    def references(self) -> list[str]:
        """What overlap metrics compare an answer to."""
        return [self.reference] if self.reference else list(self.answers)


def json_lines(path: Path, unit: str = "object") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line holding one; blank and # lines skipped; errors name the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(str(path), f"cannot be read as UTF-8 text ({exc})") from None
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(where, f"is not a JSON object ({exc.msg}); write one {unit} per line") from None
        if not isinstance(row, dict):
            raise InputFileError(where, f"is not a JSON object; write one {unit} per line")
        yield number, row


def load_qa(path: Path) -> list[QAItem]:
    """The file's questions; any malformed line is an error naming the file, line and field."""
    items: list[QAItem] = []
    for number, row in json_lines(path):
        where = f"{path}:{number}"
        question, answers, source = row.get("question"), row.get("answers", []), row.get("source")
        if not isinstance(question, str) or not question.strip():
            raise InputFileError(where, "field 'question' must be a non-empty string")
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            raise InputFileError(where, "field 'answers' must be a list of non-empty strings ([] if unanswerable)")
        if source is not None and not isinstance(source, str):
            raise InputFileError(where, "field 'source' must be a string or absent")
        kind = row.get("kind")
        if kind is not None and (not isinstance(kind, str) or not kind.strip()):
            raise InputFileError(where, "field 'kind' must be a non-empty string or absent")
        reference = row.get("reference")
        if reference is not None and (not isinstance(reference, str) or not reference.strip()):
            raise InputFileError(where, "field 'reference' must be a non-empty string or absent")
        items.append(QAItem(question.strip(), tuple(answers), source, number, kind, reference))
    if not items:
        raise InputFileError(str(path), "holds no questions; see the QA file format in docs/evaluation.md")
    return items


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def is_correct(answer: str, expected: tuple[str, ...] | list[str]) -> bool:
    """An answer is correct when it contains any of the expected strings."""
    said = _normalized(answer)
    return any(_normalized(e) in said for e in expected)
