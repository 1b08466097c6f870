"""Keyword index of live chunks (FTS5 on SQLite, tsvector + GIN on PostgreSQL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

The index is filled by the catalog as chunks become live; collections that existed
before this revision have `keywords` NULL and are rebuilt by their next ingest or
`assistant reindex` (until then they are searched by meaning only).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("keywords", sa.JSON, nullable=True))
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE chunk_keywords ("
            " collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
            " chunk_id VARCHAR(40) NOT NULL,"
            " terms TSVECTOR NOT NULL,"
            " PRIMARY KEY (collection_id, chunk_id))"
        )
        op.execute("CREATE INDEX ix_chunk_keywords_terms ON chunk_keywords USING GIN (terms)")
    else:
        # Our terms keep identifiers whole, so the tokenizer must not split them again.
        op.execute(
            "CREATE VIRTUAL TABLE chunk_keywords USING fts5("
            "title, terms, collection_id UNINDEXED, chunk_id UNINDEXED, "
            "tokenize = \"unicode61 remove_diacritics 0 tokenchars '-_.:'\")"
        )


def downgrade() -> None:
    op.execute("DROP TABLE chunk_keywords")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("keywords")
