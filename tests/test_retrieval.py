"""Hybrid retrieval against real parts: the SQL keyword index (SQLite FTS5 and PostgreSQL)
beside Chroma, fusion, passages grown by their neighbours, de-duplication, re-ranking."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text, update

from assistant import Assistant, Settings
from assistant.errors import ConfigurationError
from assistant.settings import RetrievalSettings
from retrievers.catalog_tables import collections
from retrievers.embedder import bundled_embedder_path
from retrievers.keywords import document_terms, query_terms
from retrievers.rerank import CrossEncoderReranker

SETTINGS_NAME = "codes"

ERRORS = """# Error codes

Every error the server reports carries a five-character SQLSTATE code.

| Code | Condition name |
| --- | --- |
| 08006 | connection_failure |
| 22012 | division_by_zero |
| 23505 | unique_violation |
| 40001 | serialization_failure |
| 40P01 | deadlock_detected |
| 42601 | syntax_error |
| 57014 | query_canceled |
"""

SETTINGS = """# Memory settings

## work_mem

Sets the base maximum amount of memory to be used by a query operation, such as a sort
or a hash table, before writing to temporary disk files. The default is four megabytes.

## maintenance_work_mem

Specifies the maximum amount of memory to be used by maintenance operations, such as
VACUUM and CREATE INDEX. The default is 64 megabytes.

## pg_stat_activity.query

The column pg_stat_activity.query holds the text of the backend's most recent query.
"""

DUMP = """# Dump options

The dump tool writes a database to a file. Its options change how it works.

`--jobs=N` runs the dump in parallel by dumping N tables at the same time. It needs
the directory output format.

`--verbose` prints detailed progress messages to standard error.

`--schema-only` dumps only the object definitions, not the data.
"""


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "errors.md").write_text(ERRORS)
    (folder / "settings.md").write_text(SETTINGS)
    (folder / "dump.md").write_text(DUMP)
    return folder


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """An assistant over a small corpus full of identifiers, on SQLite and embedded Chroma."""
    root = tmp_path_factory.mktemp("coded")
    bot = Assistant.from_settings(Settings(data_dir=root / "state"))
    bot.ingest(write_corpus(root / "docs"), SETTINGS_NAME)
    return bot


def test_identifiers_are_terms_as_written_and_as_parts() -> None:
    terms = document_terms(
        "Dump options", "Use --jobs=4 with work_mem; see pg_stat_activity.query and 40P01.", "english"
    )
    for term in ("--jobs", "work_mem", "work", "mem", "pg_stat_activity.query", "pg_stat_activity", "40p01", "dump"):
        assert term in terms
    # Question words carry no topic; words are stemmed the same way on both sides.
    assert query_terms("What does the work_mem setting control?", "english") == ["work_mem", "work", "mem", "control"]
    assert query_terms("Which options?", "english") == document_terms("", "options", "english")


@pytest.mark.parametrize(
    ("question", "must_hold"),
    [
        ("What does SQLSTATE 40P01 mean?", "deadlock_detected"),
        ("error 57014", "query_canceled"),
        ("What is work_mem?", "temporary disk files"),
        ("What does --jobs do?", "in parallel"),
        ("What does pg_stat_activity.query hold?", "most recent query"),
    ],
)
def test_exact_identifiers_come_first(coded: Assistant, question: str, must_hold: str) -> None:
    top = coded.retriever(SETTINGS_NAME).search(question)[0]
    assert must_hold in top.text
    assert top.keyword_rank is not None and top.fused > 0


def test_which_names_a_collection_knows(coded: Assistant) -> None:
    def known(question: str) -> float | None:
        return coded.index.retrieve(SETTINGS_NAME, question, 4).signals()["identifiers_known"]

    assert known("What does 40P01 mean?") == 1.0
    assert known("What does innodb_buffer_pool_size do?") == 0.0  # another database's parameter
    # A dotted name the documents write apart ("the query column of pg_stat_activity") is known
    # when each part is; a part no document holds is not.
    assert known("What does pg_stat_activity.work_mem hold?") == 1.0
    # Of pg_stat_activity.wait_event, pg_stat_activity and wait_event, only pg_stat_activity is known.
    assert known("What does pg_stat_activity.wait_event hold?") == 0.3333
    # Hyphenated words are words, not names a collection must hold.
    assert known("Which memory settings are per-query?") is None


def test_keyword_index_follows_every_change(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "docs")
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state"))
    bot.ingest(folder, "moving")
    index, catalog = bot.index, bot.index.catalog
    col = catalog.require("moving")
    assert index.check("moving").consistent
    assert index.keywords.search(col.id, ["40p01"], 5)

    (folder / "errors.md").write_text(ERRORS.replace("40P01 | deadlock_detected", "40P99 | invented_code"))
    bot.ingest(folder, "moving")
    assert index.check("moving").consistent
    assert index.keywords.search(col.id, ["40p01"], 5) == []
    assert index.keywords.search(col.id, ["40p99"], 5)

    (folder / "dump.md").unlink()
    bot.ingest(folder, "moving")
    assert index.check("moving").consistent
    assert index.keywords.search(col.id, ["--jobs"], 5) == []

    bot.delete_collection("moving")
    with catalog.engine.connect() as conn:
        left = conn.scalar(text("SELECT count(*) FROM chunk_keywords WHERE collection_id = :c"), {"c": col.id})
    assert left == 0


def _forget_keywords(bot: Assistant, name: str) -> None:
    """Make the collection look as one made before the keyword index existed."""
    catalog = bot.index.catalog
    col = catalog.require(name)
    with catalog.engine.begin() as conn:
        conn.execute(update(collections).where(collections.c.id == col.id).values(keywords=None))
        conn.execute(text("DELETE FROM chunk_keywords WHERE collection_id = :c"), {"c": col.id})


def test_an_older_collection_is_searched_by_meaning_until_reindex_or_ingest_builds_its_keywords(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_corpus(tmp_path / "docs")
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state"))
    bot.ingest(folder, "older")
    _forget_keywords(bot, "older")
    assert bot.describe_collection("older").keywords == "not built"
    with caplog.at_level(logging.WARNING):
        found = bot.retriever("older").search("What does SQLSTATE 40P01 mean?")
    assert found and all(p.keyword_rank is None for p in found)
    assert "assistant reindex older" in caplog.text

    bot.reindex("older")
    assert bot.describe_collection("older").keywords == "english"
    assert bot.index.check("older").consistent
    assert "deadlock_detected" in bot.retriever("older").search("What does SQLSTATE 40P01 mean?")[0].text

    _forget_keywords(bot, "older")
    report = bot.ingest(folder, "older")  # nothing changed on disk, yet the index is built
    assert report.files_unchanged == 3 and report.chunks_added == 0
    assert bot.describe_collection("older").keywords == "english"
    assert bot.index.check("older").consistent


@pytest.mark.postgres
def test_keyword_index_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "docs")
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state", database_url=postgres_url))
    name = f"pg-{tmp_path.name[-20:].lower().replace('_', '-')}"
    bot.ingest(folder, name)
    try:
        assert bot.index.check(name).consistent
        for question, must_hold in [
            ("What does SQLSTATE 40P01 mean?", "deadlock_detected"),
            ("What does --jobs do?", "in parallel"),
            ("What is work_mem?", "temporary disk files"),
        ]:
            top = bot.retriever(name).search(question)[0]
            assert must_hold in top.text and top.keyword_rank is not None
        (folder / "dump.md").unlink()
        bot.ingest(folder, name)
        col = bot.index.catalog.require(name)
        assert bot.index.keywords.search(col.id, ["--jobs"], 5) == []
        assert bot.index.check(name).consistent
    finally:
        bot.delete_collection(name)


LONG_SECTION = "# Guide\n\n## Installing the pump\n\n" + " ".join(
    f"Step {n}: fasten bracket B{n} with two screws and check that the seal S{n} sits flat." for n in range(1, 25)
)


def test_a_hit_grows_by_its_neighbours_without_repeating_their_overlap(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(LONG_SECTION)
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state", chunk_tokens=60, chunk_overlap_tokens=12))
    bot.ingest(tmp_path / "docs", "guide")
    question = "Which bracket is fastened in step 12?"
    alone = bot.index.retrieve("guide", question, 1, RetrievalSettings(neighbour_chunks=0)).passages[0]
    wider = RetrievalSettings(neighbour_chunks=1, passage_max_tokens=200)
    grown = bot.index.retrieve("guide", question, 1, wider).passages[0]
    assert grown.chunk_id == alone.chunk_id
    assert alone.text in grown.text and len(grown.text) > len(alone.text)
    assert grown.metadata["expanded"] > 1
    # The splitter's overlap is written once: every step appears at most once.
    steps = [s for s in grown.text.split("Step ")[1:]]
    numbers = [s.split(":")[0] for s in steps]
    assert len(numbers) == len(set(numbers))


def test_near_duplicates_are_dropped(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs")
    (docs / "errors-copy.md").write_text(ERRORS)
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state"))
    bot.ingest(docs, "twice")
    question = "What does SQLSTATE 40P01 mean?"
    kept = bot.index.retrieve("twice", question, 4, RetrievalSettings(dedupe_overlap=1.0)).passages
    deduped = bot.index.retrieve("twice", question, 4, RetrievalSettings(dedupe_overlap=0.8)).passages
    assert {"errors.md", "errors-copy.md"} <= {p.source for p in kept}
    assert len([p for p in deduped if "deadlock_detected" in p.text]) == 1


@pytest.fixture(scope="module")
def reranker() -> Iterator[CrossEncoderReranker]:
    # A real sentence-transformers CrossEncoder. The only cross-encoder weights on this machine are
    # the bundled bi-encoder's, so its scoring head is freshly initialised: the test checks the
    # plumbing (scores computed, order follows them), not the quality of the ranking.
    yield CrossEncoderReranker(bundled_embedder_path(), top_n=5)


@pytest.mark.slow
def test_a_cross_encoder_reorders_the_fused_candidates(coded: Assistant, reranker: CrossEncoderReranker) -> None:
    candidates = coded.retriever(SETTINGS_NAME).search("What does --jobs do?", k=6)
    ranked = reranker.rerank("What does --jobs do?", candidates)
    assert sorted(p.chunk_id for p in ranked) == sorted(p.chunk_id for p in candidates)
    scores = [p.metadata["rerank_score"] for p in ranked[:5]]
    assert scores == sorted(scores, reverse=True)
    assert all("rerank_score" not in p.metadata for p in ranked[5:])


def test_a_reranker_path_that_is_not_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="reranker_model"):
        CrossEncoderReranker(tmp_path / "missing")


@pytest.mark.slow
def test_a_document_with_more_chunks_than_chroma_takes_in_one_call_is_stored(tmp_path: Path) -> None:
    # Found on the Python manual: its generated index page splits into 22,593 chunks.
    from retrievers.store import ChunkStore, connect_chroma

    client = connect_chroma(None, tmp_path / "chroma")
    store = ChunkStore(client, "test store")
    collection = store.create("many", "test", 2)
    count = client.get_max_batch_size() + 10
    ids = [f"c{n}" for n in range(count)]
    store.upsert(collection, ids, ids, [{"n": n} for n in range(count)], [[1.0, n / count] for n in range(count)])
    assert store.ids(collection) == set(ids)
