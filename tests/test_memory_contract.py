"""One contract every memory backend must pass: SQLite (a temporary file) and a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from assistant import InvalidInputError, StoreUnavailableError, UnknownFactError, UnknownSessionError
from memory import NewMessage, SQLMemory, StoredSummary, create_memory_engine
from memory.schema import utcnow
from memory.transfer import export_session, import_session


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLMemory]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'memory.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_memory_engine(url)
    store = SQLMemory(engine)
    yield store
    if request.param == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE user_facts, session_summaries, messages, sessions, users CASCADE"))
    engine.dispose()


def turn(memory: SQLMemory, user: str, session: str, n: int) -> None:
    memory.add_turn(
        user,
        session,
        NewMessage("user", f"question {n}", token_count=3, signals={"standalone_question": f"q{n}"}),
        NewMessage(
            "assistant",
            f"answer {n}",
            token_count=2,
            route="local",
            model="m",
            reason="why",
            sources=[{"file": "a.md", "location": "x", "score": 0.5}],
        ),
    )


def test_turns_are_stored_in_order_with_their_fields(memory: SQLMemory) -> None:
    for n in range(3):
        turn(memory, "alice", "s1", n)
    messages = memory.messages("alice", "s1")
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5, 6]
    assert [m.content for m in messages[:2]] == ["question 0", "answer 0"]
    assert messages[1].route == "local" and messages[1].reason == "why"
    assert messages[1].sources == [{"file": "a.md", "location": "x", "score": 0.5}]
    assert messages[0].signals == {"standalone_question": "q0"}
    assert [m.content for m in memory.recent_messages("alice", "s1", 2)] == ["question 2", "answer 2"]


def test_same_session_name_is_private_to_each_user(memory: SQLMemory) -> None:
    turn(memory, "alice", "s1", 1)
    turn(memory, "bob", "s1", 2)
    assert [m.content for m in memory.messages("alice", "s1")] == ["question 1", "answer 1"]
    assert [m.content for m in memory.messages("bob", "s1")] == ["question 2", "answer 2"]
    assert [s.user_id for s in memory.sessions("bob")] == ["bob"]
    assert memory.recent_messages("carol", "s1", 10) == []


def test_sessions_list_and_delete(memory: SQLMemory) -> None:
    turn(memory, "alice", "s1", 1)
    turn(memory, "alice", "s2", 2)
    listed = memory.sessions("alice")
    assert {s.session_id for s in listed} == {"s1", "s2"}
    assert all(s.message_count == 2 for s in listed)
    memory.delete_session("alice", "s1")
    assert [s.session_id for s in memory.sessions("alice")] == ["s2"]
    with pytest.raises(UnknownSessionError, match="session 's1' of user 'alice'"):
        memory.messages("alice", "s1")
    with pytest.raises(UnknownSessionError):
        memory.delete_session("bob", "s2")


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreUnavailableError, match="database postgresql"):
        SQLMemory(create_memory_engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none"))


# Windows and summaries --------------------------------------------------------------------


def test_window_reads_recent_summary_and_what_fell_between(memory: SQLMemory) -> None:
    for n in range(6):  # 12 messages
        turn(memory, "alice", "s1", n)
    window = memory.window("alice", "s1", recent=4, unsummarized=3)
    assert [m.seq for m in window.recent] == [9, 10, 11, 12]
    assert window.summary is None
    assert window.unsummarized_total == 8 and [m.seq for m in window.unsummarized] == [6, 7, 8]

    summary = StoredSummary(through_seq=6, content="asked 0 to 2", token_count=4, model="m", created_at=utcnow())
    memory.add_summary("alice", "s1", summary)
    memory.add_summary("alice", "s1", summary)  # a second replica summarising the same turns: kept once
    window = memory.window("alice", "s1", recent=4, unsummarized=8)
    assert window.summary is not None and window.summary.content == "asked 0 to 2"
    assert [m.seq for m in window.unsummarized] == [7, 8] and window.unsummarized_total == 2
    assert [s.through_seq for s in memory.summaries("alice", "s1")] == [6]
    assert memory.window("bob", "s1", 4, 4).recent == []  # same session name, other user: nothing


# Facts --------------------------------------------------------------------------------------


def test_facts_are_per_user_and_can_be_listed_edited_and_forgotten(memory: SQLMemory) -> None:
    turn(memory, "alice", "s1", 1)
    source = memory.messages("alice", "s1")[0]
    fact = memory.facts.add(
        "alice", "fact", "The user runs the billing database.", quote="I run billing", source_message_id=source.id
    )
    memory.facts.add("alice", "preference", "The user wants brief answers.")
    again = memory.facts.add("alice", "fact", "the user runs the billing database")  # restated: no duplicate
    assert again.id == fact.id
    listed = memory.facts.list("alice")
    assert [f.kind for f in listed] == ["fact", "preference"]  # most recently stated first
    assert listed[0].session_id == "s1" and listed[0].quote == "I run billing"

    with pytest.raises(UnknownFactError):
        memory.facts.forget("bob", fact.id)  # another user's fact id is not found, whoever asks
    with pytest.raises(UnknownSessionError, match="user 'bob'"):
        memory.facts.list("bob")
    assert memory.facts.list("bob", must_exist=False) == []

    edited = memory.facts.edit("alice", fact.id, "The user runs the invoicing database.")
    assert edited.content == "The user runs the invoicing database." and edited.kind == "fact"
    memory.facts.forget("alice", fact.id)
    assert [f.kind for f in memory.facts.list("alice")] == ["preference"]
    assert memory.facts.forget_all("alice") == 1 and memory.facts.list("alice") == []
    with pytest.raises(InvalidInputError, match="fact kind"):
        memory.facts.add("alice", "opinion", "x")
    with pytest.raises(InvalidInputError, match="limit is 300"):
        memory.facts.add("alice", "fact", "x" * 301)


def test_deleting_a_session_keeps_the_users_facts(memory: SQLMemory) -> None:
    turn(memory, "alice", "s1", 1)
    source = memory.messages("alice", "s1")[0]
    memory.facts.add(
        "alice", "fact", "The user is on the payments team.", quote="I'm on payments", source_message_id=source.id
    )
    memory.delete_session("alice", "s1")
    (kept,) = memory.facts.list("alice")
    assert kept.session_id is None and kept.quote == "I'm on payments"


# Lifecycle ----------------------------------------------------------------------------------


def test_export_and_import_round_trip(memory: SQLMemory) -> None:
    for n in range(3):
        turn(memory, "alice", "s1", n)
    memory.add_summary(
        "alice", "s1", StoredSummary(through_seq=2, content="asked 0", token_count=2, model="m", created_at=utcnow())
    )
    exported = json.loads(json.dumps(export_session(memory, "alice", "s1")))  # through real JSON text
    assert import_session(memory, exported, user_id="carol", session_id="copy") == ("carol", "copy")
    original, copy = memory.messages("alice", "s1"), memory.messages("carol", "copy")
    strip = [
        (m.seq, m.role, m.content, m.token_count, m.route, m.model, m.reason, m.sources, m.signals) for m in original
    ]
    assert strip == [
        (m.seq, m.role, m.content, m.token_count, m.route, m.model, m.reason, m.sources, m.signals) for m in copy
    ]
    assert [m.created_at.replace(tzinfo=None) for m in original] == [m.created_at.replace(tzinfo=None) for m in copy]
    assert [(s.through_seq, s.content) for s in memory.summaries("carol", "copy")] == [(2, "asked 0")]
    exported_again = export_session(memory, "carol", "copy")
    assert exported_again["messages"] == exported["messages"]
    assert exported_again["summaries"] == exported["summaries"]

    with pytest.raises(InvalidInputError, match="already exists"):
        import_session(memory, exported)  # alice/s1 is still there
    assert len(memory.messages("alice", "s1")) == 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d["messages"][1].update(role="bot"), r"messages\[1\].role"),
        (lambda d: d["messages"][2].update(seq=9), r"messages\[2\].seq"),
        (lambda d: d["messages"][0].update(created_at="yesterday"), r"messages\[0\].created_at"),
        (lambda d: d["messages"][0].update(content="x" * 40_000), r"messages\[0\] content"),
        (
            lambda d: d["summaries"].append(
                {"through_seq": 99, "content": "x", "token_count": 1, "model": "m", "created_at": "2026-01-01T00:00:00"}
            ),
            r"summaries\[0\].through_seq",
        ),
    ],
)
def test_a_bad_export_names_the_field_and_stores_nothing(memory: SQLMemory, change: Any, field: str) -> None:
    turn(memory, "alice", "s1", 1)
    turn(memory, "alice", "s1", 2)
    document = export_session(memory, "alice", "s1")
    change(document)
    with pytest.raises(InvalidInputError, match=field):
        import_session(memory, document, session_id="copy")
    assert [s.session_id for s in memory.sessions("alice")] == ["s1"]


def test_deleting_a_user_removes_everything_of_theirs_only(memory: SQLMemory) -> None:
    for user in ("alice", "bob"):
        for session in ("s1", "s2"):
            turn(memory, user, session, 1)
        memory.add_summary(
            user, "s1", StoredSummary(through_seq=1, content="x", token_count=1, model="m", created_at=utcnow())
        )
        memory.facts.add(user, "fact", f"The user is called {user}.")
    gone = memory.delete_user("alice")
    assert (gone.sessions, gone.messages, gone.facts) == (2, 4, 1)
    assert memory.sessions("alice") == [] and "alice" not in memory.users()
    assert memory.facts.list("alice", must_exist=False) == []
    assert len(memory.sessions("bob")) == 2 and len(memory.facts.list("bob")) == 1
    assert len(memory.summaries("bob", "s1")) == 1
    with memory.engine.connect() as conn:  # no orphans left behind in any table
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 4
        assert conn.execute(text("SELECT count(*) FROM session_summaries")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM user_facts")).scalar() == 1
    with pytest.raises(UnknownSessionError, match="user 'alice'"):
        memory.delete_user("alice")


# Bad input ----------------------------------------------------------------------------------


def test_bad_ids_and_oversized_messages_are_refused_by_name(memory: SQLMemory) -> None:
    with pytest.raises(InvalidInputError, match="user_id"):
        memory.add_turn("", "s1", NewMessage("user", "q"), NewMessage("assistant", "a"))
    with pytest.raises(InvalidInputError, match="session_id"):
        memory.add_turn("alice", "x" * 256, NewMessage("user", "q"), NewMessage("assistant", "a"))
    with pytest.raises(InvalidInputError, match=r"answer content.*limit is 32000"):
        memory.add_turn("alice", "s1", NewMessage("user", "q"), NewMessage("assistant", "a" * 32_001))
    with pytest.raises(InvalidInputError, match="question role"):
        memory.add_turn("alice", "s1", NewMessage("system", "q"), NewMessage("assistant", "a"))
    assert memory.sessions("alice") == []  # nothing half-written
    memory.add_turn("alice", "s1", NewMessage("user", "nul\x00byte"), NewMessage("assistant", "ok"))
    assert memory.messages("alice", "s1")[0].content == "nulbyte"


def test_unknown_session_and_user_are_named(memory: SQLMemory) -> None:
    with pytest.raises(UnknownSessionError, match="session 'nope' of user 'ghost'"):
        memory.messages("ghost", "nope")
    with pytest.raises(UnknownSessionError, match="session 'nope'"):
        export_session(memory, "ghost", "nope")
    with pytest.raises(UnknownSessionError, match="user 'ghost'"):
        memory.delete_user("ghost")


@pytest.mark.slow
def test_a_turn_that_fails_half_way_leaves_nothing(memory: SQLMemory) -> None:
    """The database itself rejects the answer row (a trigger), after the question row went in."""
    turn(memory, "alice", "s1", 1)
    with memory.engine.begin() as conn:
        if memory.engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER reject_answer BEFORE INSERT ON messages WHEN NEW.content = 'poison' "
                    "BEGIN SELECT RAISE(ABORT, 'answer rejected'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION reject_answer() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.content = 'poison' THEN RAISE EXCEPTION 'answer rejected'; END IF; RETURN NEW; END "
                    "$$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER reject_answer BEFORE INSERT ON messages "
                    "FOR EACH ROW EXECUTE FUNCTION reject_answer()"
                )
            )
    try:
        with pytest.raises((StoreUnavailableError, IntegrityError), match="answer rejected"):
            memory.add_turn("alice", "s1", NewMessage("user", "question 2"), NewMessage("assistant", "poison"))
        assert [m.content for m in memory.messages("alice", "s1")] == ["question 1", "answer 1"]
        with pytest.raises((StoreUnavailableError, IntegrityError), match="answer rejected"):
            memory.add_turn("alice", "new", NewMessage("user", "question"), NewMessage("assistant", "poison"))
        assert [s.session_id for s in memory.sessions("alice")] == ["s1"]  # not even the session was created
    finally:
        with memory.engine.begin() as conn:
            conn.execute(
                text("DROP TRIGGER reject_answer" + ("" if memory.engine.dialect.name == "sqlite" else " ON messages"))
            )
            if memory.engine.dialect.name != "sqlite":
                conn.execute(text("DROP FUNCTION reject_answer()"))


def test_read_only_sqlite_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    writable = SQLMemory(create_memory_engine(f"sqlite:///{path}"))
    writable.add_turn("alice", "s1", NewMessage("user", "q"), NewMessage("assistant", "a"))
    writable.engine.dispose()
    # Opened read-only by SQLite itself (file permissions would not stop root, who runs CI).
    reader = SQLMemory(create_memory_engine(f"sqlite:///file:{path}?mode=ro&uri=true"))
    assert [m.content for m in reader.messages("alice", "s1")] == ["q", "a"]
    with pytest.raises(StoreUnavailableError, match=r"is read-only .*Make it writable"):
        reader.add_turn("alice", "s1", NewMessage("user", "q2"), NewMessage("assistant", "a2"))
    with pytest.raises(StoreUnavailableError, match="read-only"):
        reader.facts.add("alice", "fact", "The user is read-only.")
    assert len(reader.messages("alice", "s1")) == 2


@pytest.mark.postgres
def test_read_only_postgres_database_is_a_clear_error(postgres_url: str) -> None:
    SQLMemory(create_memory_engine(postgres_url))  # schema in place
    reader = SQLMemory(create_memory_engine(postgres_url + "?options=-c%20default_transaction_read_only%3Don"))
    with pytest.raises(StoreUnavailableError, match=r"is read-only .*read-only transaction"):
        reader.add_turn("ro-user", "s1", NewMessage("user", "q"), NewMessage("assistant", "a"))
    assert reader.sessions("ro-user") == []
    reader.engine.dispose()
