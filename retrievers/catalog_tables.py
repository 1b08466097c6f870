"""The document catalog's tables (SQLAlchemy Core), as the Alembic revisions in
memory/migrations create them; a test checks the two agree."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = ["chunks", "collections", "document_summaries", "documents", "ingest_jobs", "metadata"]

metadata = MetaData()

collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(512), nullable=False, unique=True),
    Column("chroma_name", String(512), nullable=False),
    Column("generation", Integer, nullable=False, default=1),
    Column("embedder", JSON, nullable=False),
    Column("building", JSON, nullable=True),  # a reindex in progress: its Chroma collection and embedder
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("lock_owner", String(255), nullable=True),
    Column("lock_until", Float, nullable=True),  # epoch seconds
    Column("local_only", Boolean, nullable=False, server_default=false()),  # never escalated to a large model
    # The keyword index's scheme (retrievers.keywords.KeywordScheme); NULL: not built (yet).
    # The index itself (chunk_keywords) is engine-specific DDL, see migration 0005.
    Column("keywords", JSON, nullable=True),
    # The user a private collection belongs to (the HTTP API hides it from everyone else); NULL: shared.
    Column("owner", String(255), nullable=True),
    # The user who created it over the HTTP API and may write it (besides admin keys); NULL: the CLI made it.
    Column("created_by", String(255), nullable=True),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("doc_key", String(40), nullable=False),  # stable across renames; chunk ids derive from it
    Column("path", Text, nullable=False),  # absolute path, the document's identity on disk
    Column("source", Text, nullable=False),  # as shown in citations: relative to the ingested folder
    Column("kind", String(16), nullable=False),
    Column("file_hash", String(64), nullable=False),  # "" while its first version is being written
    Column("size", BigInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("collection_id", "path"),
    UniqueConstraint("collection_id", "doc_key"),
    Index("ix_documents_hash", "collection_id", "file_hash"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("collection_id", ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("document_id", ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("chunk_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("state", String(8), nullable=False),  # live | pending | deleting
    Index("ix_chunks_document", "document_id"),
    Index("ix_chunks_state", "collection_id", "state"),
)

document_summaries = Table(
    "document_summaries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    # NULL: the collection's summary, merged from its documents' summaries.
    Column("document_id", ForeignKey("documents.id", ondelete="CASCADE"), nullable=True),
    # The document's file hash when summarised (a collection's: a digest of its documents' hashes):
    # a summary whose hash no longer matches is stale, and is rebuilt instead of shown.
    Column("file_hash", String(64), nullable=False),
    Column("focus", String(512), nullable=False),  # "" for none
    Column("summary", JSON, nullable=False),  # chains.document_summary.DocumentSummary as JSON
    Column("models", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("document_id", "focus"),
    Index("ix_document_summaries_collection", "collection_id", "document_id"),
)

ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("collection", String(512), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # queued, running, done, failed
    Column("files_total", Integer, nullable=False),
    Column("files_done", Integer, nullable=False),
    # {"files": [per-file IngestReport], "chunks_written": n, "current_file": name} (a plain list in older rows)
    Column("report", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),  # a heartbeat while running
    Index("ix_ingest_jobs_user", "user_id", "created_at"),
)
