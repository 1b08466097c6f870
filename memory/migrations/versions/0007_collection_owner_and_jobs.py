"""Private collections (an owner) and ingestion jobs of the HTTP API.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("collection", sa.String(512), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("files_total", sa.Integer, nullable=False),
        sa.Column("files_done", sa.Integer, nullable=False),
        sa.Column("report", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ingest_jobs_user", "ingest_jobs", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_jobs_user", "ingest_jobs")
    op.drop_table("ingest_jobs")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("owner")
