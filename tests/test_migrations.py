"""Alembic migrations: old databases upgrade without losing a row, and the schema matches the code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, DateTime, Engine, MetaData, column, insert, inspect, table, text

from memory import SQLMemory, create_memory_engine
from memory.migrate import current_revision, head_revision, upgrade
from memory.records import StoredSummary
from memory.schema import Base
from retrievers import catalog_tables


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_memory_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    # A database of its own on the shared server, so that this test starts from nothing.
    base_url: str = request.getfixturevalue("postgres_url")
    name = f"migrations_{tmp_path.name.lower().replace('-', '_')[-40:]}"
    admin = create_memory_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_memory_engine(base_url.rsplit("/", 1)[0] + f"/{name}")
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


def _differences(engine: Engine, metadata: MetaData) -> list[object]:
    """What Alembic's autogenerate would change to make the database match `metadata`."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = set(metadata.tables)

    def other_tables(d: object) -> bool:  # the memory and catalog metadata each see the other's tables
        if isinstance(d, tuple) and d[0] == "remove_table":
            return d[1].name not in ours
        if isinstance(d, tuple) and d[0] == "remove_index":
            return d[1].table.name not in ours
        return False

    return [d for d in diff if not other_tables(d)]


def test_migrated_schema_matches_the_code(empty_engine: Engine) -> None:
    assert upgrade(empty_engine) == head_revision()
    assert _differences(empty_engine, Base.metadata) == []
    assert _differences(empty_engine, catalog_tables.metadata) == []


def test_upgrade_from_the_first_revision_keeps_every_row(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0001")
    assert current_revision(empty_engine) == "0001"
    assert "user_facts" not in inspect(empty_engine).get_table_names()
    # Filled the way version 0001 of the code wrote it (table shapes as that revision made them).
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    users = table("users", column("id"), column("external_id"), column("created_at", DateTime(timezone=True)))
    sessions = table(
        "sessions",
        *(column(c) for c in ("id", "user_id", "external_id", "title")),
        column("created_at", DateTime(timezone=True)),
        column("updated_at", DateTime(timezone=True)),
    )
    messages = table(
        "messages",
        *(column(c) for c in ("session_id", "seq", "role", "content", "token_count", "route", "model", "reason")),
        column("sources", JSON),
        column("signals", JSON),
        column("created_at", DateTime(timezone=True)),
    )
    with empty_engine.begin() as conn:
        conn.execute(insert(users).values(id=1, external_id="alice", created_at=at))
        conn.execute(
            insert(sessions).values(id=1, user_id=1, external_id="s1", title="Warranty", created_at=at, updated_at=at)
        )
        turns = [
            (1, "user", "What is the warranty?", None),
            (2, "assistant", "Two years.", "local"),
            (3, "user", "Who won the 2022 World Cup?", None),
            (4, "assistant", "Argentina.", "fallback"),  # the large model's route before revision 0004
        ]
        for seq, role, content, route in turns:
            conn.execute(
                insert(messages).values(
                    session_id=1,
                    seq=seq,
                    role=role,
                    content=content,
                    token_count=4,
                    route=route,
                    model=None,
                    reason=None,
                    sources=[{"file": "warranty.md"}] if role == "assistant" else [],
                    signals={},
                    created_at=at + timedelta(minutes=seq),
                )
            )

    memory = SQLMemory(empty_engine)  # upgrades on start
    assert current_revision(empty_engine) == head_revision()
    messages = memory.messages("alice", "s1")
    assert [(m.seq, m.role, m.content, m.route) for m in messages] == [
        (1, "user", "What is the warranty?", None),
        (2, "assistant", "Two years.", "local"),
        (3, "user", "Who won the 2022 World Cup?", None),
        (4, "assistant", "Argentina.", "large"),
    ]
    assert messages[1].sources == [{"file": "warranty.md"}]
    assert memory.sessions("alice")[0].title == "Warranty"
    # And the new tables work on the old rows.
    memory.facts.add("alice", "fact", "The user owns an X200.", source_message_id=messages[0].id)
    memory.add_summary(
        "alice",
        "s1",
        StoredSummary(
            through_seq=4, content="asked about warranty", token_count=4, model="m", created_at=messages[3].created_at
        ),
    )
    assert memory.facts.list("alice")[0].session_id == "s1"
    assert memory.window("alice", "s1", 0, 0).summary is not None


def test_a_database_made_before_migrations_is_recognised_and_upgraded(tmp_path: Path) -> None:
    """Versions before Alembic created the tables directly: no alembic_version table."""
    engine = create_memory_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (external_id, created_at) VALUES ('alice', '2026-11-01 10:00:00')"))
        conn.execute(text("DROP TABLE alembic_version"))
    assert current_revision(engine) is None
    memory = SQLMemory(engine)
    assert current_revision(engine) == head_revision()
    assert memory.users() == ["alice"]


@pytest.mark.slow
def test_processes_starting_together_on_a_fresh_database_all_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys; from memory import SQLMemory, create_memory_engine; from memory.store import NewMessage; "
        "m = SQLMemory(create_memory_engine(sys.argv[1])); "
        "m.add_turn('u', sys.argv[2], NewMessage('user', 'q'), NewMessage('assistant', 'a'))"
    )
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, f"s{i}"], cwd=root, stderr=subprocess.PIPE) for i in range(4)
    ]
    errors = [p.communicate()[1].decode() for p in procs if p.wait() != 0]
    assert errors == []
    engine = create_memory_engine(url)
    assert current_revision(engine) == head_revision()
    assert len(SQLMemory(engine).sessions("u")) == 4


def test_upgrade_to_roles_keeps_keys_and_scopes_private_collections(empty_engine: Engine) -> None:
    """0009: existing keys become "user" keys; a private collection is stored under its
    owner's scope (its jobs follow it) and its owner may write it; shared ones are unchanged."""
    from memory.db import Database
    from memory.keys import KeyStore
    from retrievers.naming import is_private_name, private_name, shown_name

    upgrade(empty_engine, "0008")
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    collections = table(
        "collections",
        *(column(c) for c in ("id", "name", "chroma_name", "generation", "owner")),
        column("embedder", JSON),
        column("created_at", DateTime(timezone=True)),
        column("updated_at", DateTime(timezone=True)),
    )
    jobs = table(
        "ingest_jobs",
        *(column(c) for c in ("id", "collection", "user_id", "status", "files_total", "files_done")),
        column("created_at", DateTime(timezone=True)),
        column("updated_at", DateTime(timezone=True)),
    )
    keys = table("api_keys", *(column(c) for c in ("user_id", "name", "prefix", "secret_hash")), column("created_at"))
    embedder = {"name": "e", "dimension": 3, "normalized": True, "spec": None}
    with empty_engine.begin() as conn:
        for n, (name, owner) in enumerate([("notes", "alice"), ("handbook", None)], start=1):
            conn.execute(
                insert(collections).values(
                    id=n, name=name, chroma_name=f"{name}.abc", generation=1, owner=owner, embedder=embedder,
                    created_at=at, updated_at=at,
                )
            )  # fmt: skip
        conn.execute(
            insert(jobs).values(
                id="j1", collection="notes", user_id="alice", status="done", files_total=1, files_done=1,
                created_at=at, updated_at=at,
            )
        )  # fmt: skip
        conn.execute(insert(keys).values(user_id="alice", name="", prefix="ak_x", secret_hash="h" * 64, created_at=at))

    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT id, name, owner, created_by FROM collections"))}
        job_collection = conn.scalar(text("SELECT collection FROM ingest_jobs WHERE id = 'j1'"))
    assert rows[1].name == private_name("notes", "alice") and is_private_name(rows[1].name)
    assert shown_name(rows[1].name) == "notes" and (rows[1].owner, rows[1].created_by) == ("alice", "alice")
    assert (rows[2].name, rows[2].owner, rows[2].created_by) == ("handbook", None, None)
    assert job_collection == rows[1].name
    assert [k.role for k in KeyStore(Database(empty_engine)).list()] == ["user"]
