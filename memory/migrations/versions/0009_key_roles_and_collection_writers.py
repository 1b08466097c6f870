"""Key roles, who may write a collection, and private collections scoped by their owner.

- `api_keys.role`: "user" (every existing key) or "admin".
- `collections.created_by`: the user who created it over the HTTP API and may write
  it; NULL (collections made with the CLI): only admin keys may write it over HTTP.
- A private collection is stored as `<name>.<12 hex of its owner>-` (retrievers.naming),
  so that its name no longer blocks, and so reveals, the same name to other users.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_SCOPE_CHARS = 14  # ".<12 hex>-"


def _scoped(name: str, owner: str) -> str:
    # As retrievers.naming.private_name was when this revision was written.
    return f"{name[: 512 - _SCOPE_CHARS]}.{hashlib.sha256(owner.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}-"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="user"))
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("created_by", sa.String(255), nullable=True))
    conn = op.get_bind()
    collections = sa.table(
        "collections", sa.column("id"), sa.column("name"), sa.column("owner"), sa.column("created_by")
    )
    jobs = sa.table("ingest_jobs", sa.column("collection"))
    private = conn.execute(
        sa.select(collections.c.id, collections.c.name, collections.c.owner).where(collections.c.owner.is_not(None))
    ).all()
    for row in private:
        scoped = _scoped(row.name, row.owner)
        conn.execute(sa.update(collections).where(collections.c.id == row.id).values(name=scoped, created_by=row.owner))
        conn.execute(sa.update(jobs).where(jobs.c.collection == row.name).values(collection=scoped))


def downgrade() -> None:
    conn = op.get_bind()
    collections = sa.table("collections", sa.column("id"), sa.column("name"), sa.column("owner"))
    jobs = sa.table("ingest_jobs", sa.column("collection"))
    private = conn.execute(
        sa.select(collections.c.id, collections.c.name, collections.c.owner).where(collections.c.owner.is_not(None))
    ).all()
    for row in private:
        if row.name.endswith("-"):  # a name scoped by upgrade(); two users' same name cannot both go back
            plain = row.name[:-_SCOPE_CHARS]
            conn.execute(sa.update(collections).where(collections.c.id == row.id).values(name=plain))
            conn.execute(sa.update(jobs).where(jobs.c.collection == row.name).values(collection=plain))
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
