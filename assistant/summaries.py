"""Summaries of a document or a collection, as `Assistant.summarize` serves them.

Finds the document a user names (its source as cited, "sub/policy.md", or the path of
the file that was ingested), cuts its stored chunks into sections
(assistant.summary_sections), has chains.document_summary write the summary, and keeps
it in the store (retrievers.summaries) under the document's file hash: the next request
is served from there until the document changes. A collection's summary is the summary
of its documents' summaries, each sentence cited by its document (and by the section,
when it restates one sentence of that document's summary). A file that was never
ingested is read with the ingest's own parsers and summarised, not stored.

Which models may write it (the large one only under the routing and privacy rules of
answers) is the factory's `make_summarizer`; this module never decides that.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import InputFileError, InvalidInputError, UnknownCollectionError, UserError, close_matches
from assistant.summary_sections import chunk_sections
from retrievers.naming import is_private_name
from retrievers.scan import stored_path
from retrievers.summaries import collection_key

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from chains.document_summary import DocumentSummarizer, DocumentSummary, SummarySection, SummarySentence
    from retrievers.catalog import CollectionRow
    from retrievers.index import DocumentIndex
    from retrievers.ledger import DocumentRow

__all__ = [
    "DocumentSummaries",
    "MakeSummarizer",
    "SummaryReport",
    "UnknownDocumentError",
    "summary_from_json",
    "summary_to_json",
]

MAX_FOCUS_CHARS = 500
_RESTATES = 0.8  # share of a merged sentence's words one document-summary sentence must hold
_FORMAT = 1  # of the stored JSON; a summary stored in another format is made again

# (embeddings, collection name or None for a file in no collection, local-only, user id) -> summarizer
MakeSummarizer = Callable[["Embeddings", "str | None", bool, str], "DocumentSummarizer"]


class UnknownDocumentError(UserError):
    """A document that is not in the collection (nor a file that could be read instead)."""

    def __init__(self, target: str, collection: str | None, known: list[str]) -> None:
        self.target = target
        self.collection = collection
        self.known = known
        where = f"collection {collection!r}" if collection else "any collection"
        matches = close_matches(target, known) or close_matches(Path(target).name, known)
        if matches:
            hint = "did you mean " + " or ".join(repr(m) for m in matches) + "?"
        elif known:
            shown = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
            hint = f"its documents: {shown}"
        else:
            hint = "it holds no document yet"
        advice = (
            ""
            if matches
            else " Name a document as its answers cite it, or ingest the file first: "
            f"assistant ingest FILE{f' -c {collection}' if collection else ''}"
        )
        super().__init__(
            f"document {target!r} is not in {where}, and is not a file here; {hint}{'' if matches else '.'}{advice}"
        )


@dataclass(frozen=True)
class SummaryReport:
    """A summary and where it came from."""

    summary: DocumentSummary
    target: str  # the document's source as cited, the collection's name, or the file's path
    collection: str | None  # None: a file in no collection, summarised from the file
    document: bool  # False: the collection's summary
    stored: bool  # served from the store (made earlier, from this version of the document)
    created_at: datetime | None  # when the summary was made (None: just now, not stored)

    @property
    def ingested(self) -> bool:
        return self.collection is not None


def summary_to_json(summary: DocumentSummary) -> dict[str, Any]:
    return {"format": _FORMAT, **asdict(summary)}


def summary_from_json(value: dict[str, Any]) -> DocumentSummary | None:
    """The stored summary, or None when it was stored in a format this version does not read."""
    from chains.document_summary import DocumentSummary, SummarySentence

    if value.get("format") != _FORMAT:
        return None
    try:
        known = {f.name for f in fields(SummarySentence)}
        sentences = [SummarySentence(**{k: v for k, v in s.items() if k in known}) for s in value["sentences"]]
        rest = {f.name: value[f.name] for f in fields(DocumentSummary) if f.name in value and f.name != "sentences"}
        if "escalated" in rest:
            rest["escalated"] = [(int(i), str(why)) for i, why in rest["escalated"]]
        return DocumentSummary(sentences=sentences, **rest)
    except (KeyError, TypeError, ValueError):
        return None


def check_focus(focus: str | None) -> str:
    """The focus as stored ("" for none)."""
    if focus is None:
        return ""
    from memory.records import check_text

    focus = " ".join(check_text("focus", focus).split())
    if len(focus) > MAX_FOCUS_CHARS:
        raise InvalidInputError("focus", f"is {len(focus)} characters, over {MAX_FOCUS_CHARS}", "Say it shorter.")
    return focus


class DocumentSummaries:
    """Summaries of the documents and collections of `index`."""

    def __init__(self, index: DocumentIndex, make_summarizer: MakeSummarizer) -> None:
        self.index = index
        self.make_summarizer = make_summarizer

    def summarize(
        self,
        target: str | None,
        *,
        collection: str | None,
        default_collection: Callable[[], str],
        focus: str | None = None,
        refresh: bool = False,
        user_id: str = "default",
    ) -> SummaryReport:
        """`target` (a document or a file; None or "": the whole `collection`), see the module's docstring.
        `default_collection` names the collection meant when none is given."""
        wanted = check_focus(focus)
        target = (target or "").strip()
        if not target:
            name = default_collection() if collection is None else collection
            return self._collection_summary(name, wanted, refresh, user_id)
        found = self._find(target, collection, default_collection)
        if found is None:
            return self._file_summary(Path(target), wanted, user_id)
        col, doc = found
        return self._document_summary(col, doc, wanted, refresh, user_id)

    # Finding the document -------------------------------------------------------------------

    def _find(
        self, target: str, collection: str | None, default_collection: Callable[[], str]
    ) -> tuple[CollectionRow, DocumentRow] | None:
        """The document `target` names in `collection` (or, with none given, in the one collection
        that holds it); None when it names a file that is in none."""
        if collection is not None:
            names = [collection]
        else:
            names = [n for n in self.index.names() if not is_private_name(n)]
            try:
                default = default_collection()
                names = [default, *(n for n in names if n != default)] if default in names else names
            except UnknownCollectionError:
                pass
        found: list[tuple[CollectionRow, DocumentRow]] = []
        known: list[str] = []
        for name in names:
            col, docs = self.index.documents(name)
            match = _match(target, docs)
            if match is not None:
                found.append((col, match))
            known.extend(d.source for d in docs)
        if len(found) > 1:
            holders = ", ".join(col.name for col, _ in found)
            raise InvalidInputError(
                "document", f"{target!r} is in several collections ({holders})", "Name one with -c NAME."
            )
        if found:
            return found[0]
        if Path(target).is_file():
            return None
        raise UnknownDocumentError(target, collection, sorted(set(known)))

    # Building and storing -------------------------------------------------------------------

    def _document_summary(
        self, col: CollectionRow, doc: DocumentRow, focus: str, refresh: bool, user_id: str
    ) -> SummaryReport:
        store = self.index.summaries
        if not refresh:
            kept = store.get(col.id, doc.id, focus, doc.file_hash)
            summary = summary_from_json(kept.summary) if kept is not None else None
            if kept is not None and summary is not None:
                return SummaryReport(summary, doc.source, col.name, True, True, kept.created_at)
        sections = chunk_sections(doc.source, self.index.document_chunks(col, doc.id))
        if not sections:
            raise InputFileError(doc.source, "holds no text to summarise")
        embeddings = self.index.embedders.for_collection(col)
        summary = self.make_summarizer(embeddings, col.name, col.local_only, user_id).summarize(sections, focus or None)
        made = store.put(col.id, doc.id, focus, doc.file_hash, summary_to_json(summary), list(summary.models))
        return SummaryReport(summary, doc.source, col.name, True, False, made.created_at)

    def _collection_summary(self, name: str, focus: str, refresh: bool, user_id: str) -> SummaryReport:
        from chains.document_summary import SummarySection

        col, docs = self.index.documents(name)
        if not docs:
            raise InvalidInputError(
                "collection",
                f"{name!r} holds no document to summarise",
                f"Ingest some: assistant ingest PATH -c {name}",
            )
        key = collection_key((d.source, d.file_hash) for d in docs)
        store = self.index.summaries
        if not refresh:
            kept = store.get(col.id, None, focus, key)
            summary = summary_from_json(kept.summary) if kept is not None else None
            if kept is not None and summary is not None:
                return SummaryReport(summary, name, name, False, True, kept.created_at)
        sections: list[SummarySection] = []
        parts: list[DocumentSummary] = []
        for doc in docs:
            part = self._document_summary(col, doc, focus, refresh, user_id).summary
            text = " ".join(s.text.strip() for s in part.sentences if s.text.strip())
            if text:
                sections.append(SummarySection(len(sections), doc.source, text))
                parts.append(part)
        if not sections:
            raise InvalidInputError("collection", f"{name!r}: none of its documents holds text to summarise")
        embeddings = self.index.embedders.for_collection(col)
        merged = self.make_summarizer(embeddings, col.name, col.local_only, user_id).summarize(sections, focus or None)
        summary = replace(merged, sentences=[_finer(s, parts[s.section]) for s in merged.sentences])
        made = store.put(col.id, None, focus, key, summary_to_json(summary), list(summary.models))
        return SummaryReport(summary, name, name, False, False, made.created_at)

    def _file_summary(self, path: Path, focus: str, user_id: str) -> SummaryReport:
        """A file in no collection: read as ingest reads it, summarised, not stored, never sent to a
        large model (no collection says it may leave this machine)."""
        from retrievers.detect import BINARY, KINDS, detect_kind
        from retrievers.ledger import ChunkRow
        from retrievers.reading import Candidate, FileReader, file_hash
        from retrievers.report import FileIssue
        from retrievers.scan import read_file

        settings = self.index.document_settings
        limit = int(settings.max_file_mb * 1e6)
        source = path.name
        try:
            data = read_file(path, limit)
        except OSError as exc:
            raise InputFileError(str(path), f"cannot be read ({exc.strerror or exc})") from None
        if len(data) > limit:
            raise InputFileError(str(path), f"is over the {settings.max_file_mb:.0f} MB limit; split it")
        kind = detect_kind(path, data)
        if kind == BINARY or kind not in KINDS:
            raise InputFileError(str(path), f"is not a kind of file that can be read ({path.suffix or 'no extension'})")
        embeddings = self.index.embedders.default()
        reader = FileReader(lambda _p: data, self.index.splitter(embeddings), settings, {})
        parsed = reader.parse(Candidate(path, source, kind, file_hash(data), len(data), None))
        if isinstance(parsed, FileIssue):
            raise InputFileError(str(path), parsed.reason)
        chunks = [ChunkRow(str(n), n, "", c.page_content, dict(c.metadata)) for n, c in enumerate(parsed.chunks)]
        sections = chunk_sections(source, chunks)
        summary = self.make_summarizer(embeddings, None, True, user_id).summarize(sections, focus or None)
        return SummaryReport(summary, str(path), None, True, False, None)


def _finer(sentence: SummarySentence, part: DocumentSummary) -> SummarySentence:
    """A collection summary's sentence cited by the section of its document it restates, when
    one sentence of the document's summary holds nearly all its words; else by the document."""
    from retrievers.words import content_words

    words = set(content_words(sentence.text))
    if not words:
        return sentence
    best = max(part.sentences, key=lambda s: len(words & set(content_words(s.text))), default=None)
    if best is None or len(words & set(content_words(best.text))) < _RESTATES * len(words):
        return sentence
    return replace(sentence, citation=best.citation)


def _match(target: str, docs: list[DocumentRow]) -> DocumentRow | None:
    """The document `target` names: its source, its stored path (a file path given), or the one
    whose source ends with it ("policy.md" for "legal/policy.md")."""
    by_source = {d.source: d for d in docs}
    if target in by_source:
        return by_source[target]
    path = Path(target).expanduser()
    if path.exists():  # ingest records the absolute path with its symbolic links as written
        stored = {stored_path(os.path.abspath(path)), stored_path(path.resolve())}
        for d in docs:
            if d.path in stored:
                return d
    tail = target.strip("/")
    ending = [d for d in docs if d.source.endswith("/" + tail)]
    return ending[0] if len(ending) == 1 else None
