"""Escalation audit, local-only collections, and the large-model route named "large".

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # External ids, not foreign keys: rows outlive deleted sessions (redacted) so budgets still hold.
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("collection", sa.String(512), nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("request", sa.JSON, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_escalations_created_at", "escalations", ["created_at"])
    op.create_index("ix_escalations_user", "escalations", ["user_id", "session_id", "created_at"])
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("local_only", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute("UPDATE messages SET route = 'large' WHERE route = 'fallback'")


def downgrade() -> None:
    op.execute("UPDATE messages SET route = 'fallback' WHERE route = 'large'")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("local_only")
    op.drop_index("ix_escalations_user", "escalations")
    op.drop_index("ix_escalations_created_at", "escalations")
    op.drop_table("escalations")
