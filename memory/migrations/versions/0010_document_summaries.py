"""Summaries of documents (`assistant summarize`), stored with the document they summarise.

One row per document and focus ("" for none), or per collection and focus (document_id
NULL: the merge of its documents' summaries). `file_hash` is the document's hash when
the summary was made (for a collection: a digest of its documents' hashes), so a
summary of a changed document is known stale and rebuilt; rows go with their document
and collection.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_summaries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=True),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("focus", sa.String(512), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("document_id", "focus"),
    )
    op.create_index("ix_document_summaries_collection", "document_summaries", ["collection_id", "document_id"])


def downgrade() -> None:
    op.drop_index("ix_document_summaries_collection", "document_summaries")
    op.drop_table("document_summaries")
