"""Sessions in the Python API: a call without `session_id` is a conversation of its own,
and the reply says where it was stored, so that passing it back asks a follow-up."""

from __future__ import annotations

from pathlib import Path

from assistant import Settings, build_assistant
from assistant.testing import FakeChatModel, FakeEmbeddings

FAQ = "The X200 coffee machine comes with a 24-month warranty.\nVisitors park on level -1 of the garage.\n"


def test_each_ask_without_a_session_is_a_new_one_and_the_reply_names_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text(FAQ, encoding="utf-8")
    llm = FakeChatModel(
        responses=[
            "The X200 comes with a 24-month warranty.",
            "Visitors park on level -1 of the garage.",
            "Where do visitors park?",  # the follow-up, condensed with the session's history
            "Visitors park on level -1 of the garage.",
        ]
    )
    bot = build_assistant(Settings(data_dir=tmp_path / "state"), llm=llm, embeddings=FakeEmbeddings())
    bot.ingest(docs, collection="faq")

    first = bot.ask("How long is the X200 warranty?", user_id="ann", collection="faq")
    second = bot.ask("Where do visitors park?", user_id="ann", collection="faq")
    assert first.session_id and second.session_id and first.session_id != second.session_id
    assert (first.user_id, first.collection) == ("ann", "faq")
    assert second.standalone_question == "Where do visitors park?"  # not read as a follow-up of the first
    assert sorted(s.session_id for s in bot.sessions("ann")) == sorted([first.session_id, second.session_id])
    assert [m.role for m in bot.history("ann", first.session_id)] == ["user", "assistant"]

    follow_up = bot.ask("And where exactly?", user_id="ann", session_id=second.session_id, collection="faq")
    assert follow_up.session_id == second.session_id
    assert len(bot.history("ann", second.session_id)) == 4
    assert bot.history("ann", second.session_id)[-1].signals["collection"] == "faq"
