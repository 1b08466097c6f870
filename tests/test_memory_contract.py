"""One contract every memory backend must pass: SQLite (a temporary file) and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from assistant import StoreUnavailableError, UnknownSessionError
from memory import NewMessage, SQLMemory, create_memory_engine


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
            conn.execute(text("TRUNCATE messages, sessions, users CASCADE"))
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
