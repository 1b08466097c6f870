"""Tabular and record documents to sections: a section per CSV row (as "column: value"
lines) and per JSON / JSON Lines record (its `json_text_field`). Records left out are
named in `notes`, never dropped silently. See retrievers.loaders."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import decode, section

__all__ = ["parse_csv", "parse_json", "parse_jsonl"]


def _numbers(found: list[int], most: int = 8) -> str:
    """ "3, 7 and 12-15": runs of numbers as ranges, at most `most` of them named."""
    runs: list[list[int]] = []
    for n in found:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    named: list[str] = []
    for a, b in runs[:most]:
        named.extend([f"{a}-{b}"] if b > a + 1 else [str(n) for n in range(a, b + 1)])
    if len(runs) > most:
        return f"{', '.join(named)} and {sum(b - a + 1 for a, b in runs[most:])} more"
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def parse_csv(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    """One section per row, each written as "column: value" lines so the header stays with it;
    cells beyond the header are kept as "column N: value"."""
    text = decode(path, data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise InputFileError(str(path), f"is not valid CSV ({exc})") from None
    if not rows:
        return []
    header = [h.strip() or f"column {i}" for i, h in enumerate(rows[0], start=1)]
    sections = []
    for number, row in enumerate(rows[1:], start=1):
        # A row with more cells than the header keeps them, named by position.
        names = header + [f"column {i}" for i in range(len(header) + 1, len(row) + 1)]
        pairs = [f"{name}: {value.strip()}" for name, value in zip(names, row, strict=False) if value.strip()]
        if pairs:
            sections.append(section("\n".join(pairs), f"row {number}", row=number))
    return sections


_MISSING = object()


def _field(record: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(record, dict) or part not in record:
            return _MISSING
        record = record[part]
    return record


def _what(value: Any) -> str:
    """What a record holds where text was expected, for messages."""
    if value is _MISSING:
        return "missing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "empty text"


def _where(unit: str, found: list[int]) -> str:
    return f"{unit}{'s' if len(found) > 1 else ''} {_numbers(found)}"


def _left_out(field: str, unit: str, without: dict[str, list[int]]) -> str:
    """ "field 'text' holds a number, not text, in records 1-3; it is missing in record 4" """
    parts = [
        f"is missing in {_where(unit, found)}"
        if what == "missing"
        else f"holds {what}, not text, in {_where(unit, found)}"
        for what, found in without.items()
    ]
    return f"field {field!r} " + "; it ".join(parts)


def _records(path: Path, records: list[tuple[int, Any]], field: str, unit: str, notes: list[str]) -> list[Document]:
    sections = []
    keys: set[str] = set()
    without: dict[str, list[int]] = {}
    for number, record in records:
        value = _field(record, field)
        if isinstance(record, dict):
            keys.update(record)
        if isinstance(value, str) and value.strip():
            extra = {unit: number}
            title = record.get("title") if isinstance(record, dict) else None
            location = f"{title}" if isinstance(title, str) and title.strip() else f"{unit} {number}"
            sections.append(section(value.strip(), location, **extra))
        else:
            without.setdefault(_what(value), []).append(number)
    seen = ", ".join(sorted(keys)[:12]) or "none: the records are not objects"
    if records and not sections:
        if set(without) == {"missing"}:
            problem = f"no record has a text field {field!r} (fields seen: {seen})"
        else:
            problem = f"no record has text: {_left_out(field, unit, without)} (fields seen: {seen})"
        raise InputFileError(str(path), f"{problem}; set ASSISTANT_JSON_TEXT_FIELD to the field that holds the text")
    if without:
        skipped = sorted(n for found in without.values() for n in found)
        notes.append(f"{_where(unit, skipped)} left out: {_left_out(field, unit, without)}")
    return sections


def _too_deep(path: Path) -> InputFileError:
    return InputFileError(
        str(path), "is JSON nested too deeply to read (over about 900 levels); flatten it to index it"
    )


def parse_json(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    try:
        value = json.loads(decode(path, data))
    except json.JSONDecodeError as exc:
        raise InputFileError(str(path), f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise _too_deep(path) from None
    records = value if isinstance(value, list) else [value]
    return _records(path, list(enumerate(records, start=1)), options.json_text_field, "record", notes)


def parse_jsonl(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    records: list[tuple[int, Any]] = []
    bad: list[int] = []
    deep: list[int] = []
    for number, line in enumerate(decode(path, data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError:
            bad.append(number)
        except RecursionError:
            deep.append(number)
    problems = [f"{_where('line', bad)} {'are' if len(bad) > 1 else 'is'} not valid JSON"] if bad else []
    if deep:
        problems.append(f"{_where('line', deep)} {'are' if len(deep) > 1 else 'is'} nested too deeply to read")
    if problems and not records:
        raise InputFileError(str(path), f"is not JSON Lines: {'; '.join(problems)}")
    if problems:
        notes.append(f"{'; '.join(problems)}; left out")
    return _records(path, records, options.json_text_field, "line", notes)
