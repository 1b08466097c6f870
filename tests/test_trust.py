"""Answers a user can trust: every shown sentence backed by the passages, follow-ups that
cannot invent, off-topic questions declined, honest reasons (issue 18).

The unit parts check the sentence check on texts; the rest asks the real bundled model
over real documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant, Settings
from chains.citing import EXTRACTIVE_LEAD
from chains.condense import _acceptable
from chains.verify import SentenceGate, Verifier, exact_tokens
from retrievers.passage import Passage

SUPPORT_DOCS = {
    "errors.md": "# Export errors\n\nError EXP-413 means the export is larger than the 50 MB limit of one "
    "export job.\n\nThe workaround for EXP-413 is to split the export by date range, so that each part stays "
    "under 50 MB.\n",
    "calls.md": "# Call recordings\n\nCall recordings are kept for 90 days and then deleted automatically. "
    "Customers can ask for a copy of a recording within those 90 days.\n",
    "contacts.md": "# Contacts\n\nBilling questions go to Maria Lopez in the finance team. Outages are handled "
    "by the on-call engineer, reachable through the status page.\n",
}


def passage(text: str, title: str = "manual.md") -> Passage:
    return Passage(chunk_id="c1", text=text, source=title, location="", score=0.7)


COUNTRIES = passage("The table lists country codes: AU Australia, NZ New Zealand, FR France.")
CONNECTIONS = passage(
    "max_connections (integer) sets the maximum number of concurrent connections. "
    "The default is typically 100 connections."
)


def test_a_sentence_whose_name_or_number_is_not_in_the_passages_is_never_shown() -> None:
    capital = Verifier([COUNTRIES], "What is the capital of Australia?").check("The capital of Australia is Canberra.")
    assert not capital.supported and capital.missing == ("Canberra",)
    number = Verifier([CONNECTIONS], "What is the default of max_connections?").check(
        "The default value of max_connections is 3."
    )
    assert not number.supported and number.missing == ("3",)
    right = Verifier([CONNECTIONS], "What is the default of max_connections?").check("The default is 100 connections.")
    assert right.supported and right.support == 1.0


def test_unsupported_words_repeats_loops_and_refusals_are_dropped() -> None:
    checker = Verifier([CONNECTIONS], "What does max_connections set?")
    assert checker.check("It sets the maximum number of concurrent connections.").supported
    assert checker.check("It sets the maximum number of concurrent connections.").problem == "repeated"
    assert checker.check("It controls disk quotas for tablespaces and backups.").problem == "unsupported"
    assert checker.check("The documents do not mention it.").problem == "declines"
    looping = Verifier([CONNECTIONS], "What does max_connections set?")
    assert looping.check("maximum number connections maximum number connections maximum number").problem == "loops"


def test_exact_tokens_are_numbers_codes_identifiers_and_names() -> None:
    found = set(exact_tokens("Set work_mem to 64 MB, see E17 and --jobs; ask Alice at the WAL."))
    assert found == {"64", "work_mem", "E17", "--jobs", "Alice", "WAL"}


def test_the_gate_releases_checked_sentences_as_they_complete_and_stops_at_a_repetition() -> None:
    gate = SentenceGate(Verifier([CONNECTIONS], "What does max_connections set?"))
    pieces = [
        "It sets the maximum",
        " number of concurrent connections.",
        " It sets the maximum number",
        " of concurrent connections.",
        " The default is 100",
    ]
    released = [s for piece in pieces for s in gate.feed(piece)]
    assert released == ["It sets the maximum number of concurrent connections."]
    assert gate.stop  # the repeat was seen: generation ends there
    assert gate.close() == []
    assert [c.problem for c in gate.verified.checked] == ["", "repeated"]


def test_a_rewrite_may_only_add_words_from_the_conversation() -> None:
    previous = "What does error EXP-413 mean?"
    follow_up = "And what is the workaround for it?"
    leaked = "The workaround for the error is to remove the Z9 from the system."
    assert not _acceptable(leaked, follow_up, previous, previous)
    assert _acceptable("What is the workaround for error EXP-413?", follow_up, previous, previous)


@pytest.fixture(scope="module")
def support_bot(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("support-docs")
    for name, text in SUPPORT_DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    bot = Assistant.from_settings(Settings(data_dir=tmp_path_factory.mktemp("support-state")))
    assert bot.ingest(folder, collection="support").files_failed == []
    return bot


def shown_sentences(answer: str) -> str:
    return answer.split("\n\n>", 1)[0]


@pytest.mark.slow
def test_the_follow_up_never_carries_the_prompt_example_and_finds_the_workaround(support_bot: Assistant) -> None:
    support_bot.ask("What does error EXP-413 mean?", user_id="u", session_id="exp", collection="support")
    reply = support_bot.ask("And what is the workaround for it?", user_id="u", session_id="exp", collection="support")
    assert "Z9" not in reply.standalone_question and "drill" not in reply.standalone_question.lower()
    assert "EXP-413" in reply.standalone_question
    assert reply.route == "local", reply.reason
    assert "split the export by date range" in reply.answer
    assert reply.sources[0].file == "errors.md"


@pytest.mark.slow
def test_every_sentence_shown_as_the_answer_is_backed_and_the_confidence_is_in_the_reason(
    support_bot: Assistant,
) -> None:
    for number, question in enumerate(
        ("How long are call recordings kept?", "Who handles billing questions?", "What does error EXP-413 mean?")
    ):
        reply = support_bot.ask(question, user_id="u", session_id=f"s-{number}", collection="support")
        assert reply.route == "local", reply.reason
        claims = shown_sentences(reply.answer)
        cited = " ".join(SUPPORT_DOCS.values()).lower()
        if claims != EXTRACTIVE_LEAD:
            for token in exact_tokens(claims):
                assert token.lower() in cited or token.lower() in question.lower(), (token, reply.answer)
            sentences = [s for s in claims.split(". ") if s]
            assert len(sentences) == len(set(sentences)), reply.answer  # no repeated sentence
        assert "confidence " in reply.reason and "looks sound" not in reply.reason
        assert 0.0 <= float(reply.signals["confidence"]) <= 1.0  # type: ignore[arg-type]
        assert "> “" in reply.answer  # the evidence, quoted with its citation
        stored = support_bot.history("u", f"s-{number}")[-1]  # the probability is stored with the turn
        assert stored.signals["confidence"] == reply.signals["confidence"]


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of Australia?",
        "How do I configure Oracle Real Application Clusters?",
        "Can you tell me a joke about cats?",
    ],
)
def test_off_topic_questions_are_declined_even_when_a_word_matches(support_bot: Assistant, question: str) -> None:
    reply = support_bot.ask(question, user_id="u", session_id=f"off-{question}", collection="support")
    assert reply.route == "abstain", (reply.answer, reply.reason)
    assert "confidence" in reply.reason and "looks sound" not in reply.reason
    assert "Canberra" not in reply.answer


@pytest.mark.slow
def test_eval_routing_fits_a_model_and_writes_the_operating_point(support_bot: Assistant, tmp_path: Path) -> None:
    from assistant.evals.confidence import fit
    from assistant.evals.qa import load_qa
    from assistant.evals.routing import collect_labelled, summarize

    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"question": "How long are call recordings kept?", "answers": ["90 days"]}\n'
        '{"question": "What does error EXP-413 mean?", "answers": ["50 MB"]}\n'
        '{"question": "Who handles billing questions?", "answers": ["Maria Lopez"]}\n'
        '{"question": "What is the capital of Australia?", "answers": []}\n'
        '{"question": "How do I bake sourdough bread?", "answers": []}\n',
        encoding="utf-8",
    )
    turns = collect_labelled(support_bot, load_qa(qa), "support")
    assert len(turns) == 5
    # Nothing is declined while labelling, but for want of any relevant passage.
    assert all(t.route == "local" or t.signals["relevant_passages"] == 0 for t in turns)
    assert sum(t.correct for t in turns) >= 2 and not any(t.correct for t in turns if not t.answerable)
    model = fit(turns)
    report = summarize(turns, model, collection="support", fitted=True)
    assert report.auroc["confidence"] is not None and report.auroc["confidence"] >= 0.5
    assert report.operating_point is not None
    assert report.curve[-1].coverage == 1.0
