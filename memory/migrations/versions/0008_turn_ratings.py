"""People's ratings of answers (human review).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turn_ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reviewer", sa.String(255), nullable=False),
        sa.Column("rating", sa.String(16), nullable=False),
        sa.Column("grounded", sa.Boolean, nullable=True),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("message_id", "reviewer"),
    )
    op.create_index("ix_turn_ratings_message_id", "turn_ratings", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_turn_ratings_message_id", "turn_ratings")
    op.drop_table("turn_ratings")
