"""A turn says what it is doing before the slow parts, refuses the caller's mistakes before
its first chunk, honours the caller's instructions and caps its answer at max_tokens.

On the real bundled model and embedder (the session `bot` over data/handbook)."""

from __future__ import annotations

import pytest

from assistant import Assistant, ConfigurationError, InvalidInputError, UnknownCollectionError
from chains.prompt import LOCAL_SYSTEM
from chains.reply import STAGES, ReplyChunk
from chains.untrusted import quote_documents

pytestmark = pytest.mark.llm

INSIDE = "How often is the X200 serviced?"


def kinds(chunks: list[ReplyChunk]) -> list[str]:
    """Each chunk as 'stage:<name>', 'text' or 'reply'; runs of text collapsed into one."""
    named: list[str] = []
    for chunk in chunks:
        kind = f"stage:{chunk.stage}" if chunk.stage else "reply" if chunk.reply is not None else "text"
        if not (kind == "text" and named and named[-1] == "text"):
            named.append(kind)
    return named


def test_a_local_turn_announces_searching_then_thinking_then_streams_its_answer(bot: Assistant) -> None:
    chunks = list(bot.stream(INSIDE, user_id="stages", session_id="local", collection="handbook", route="local"))
    assert kinds(chunks) == ["stage:searching", "stage:thinking", "text", "reply"]
    for chunk in chunks:
        if chunk.stage is not None:
            assert chunk.stage in STAGES and chunk.text == "" and chunk.reply is None
    reply = chunks[-1].reply
    assert reply is not None and reply.route == "local" and "6 months" in reply.answer
    assert reply.answer == "".join(c.text for c in chunks)  # stage chunks add nothing to the answer


def test_a_turn_with_nothing_relevant_searches_and_declines_without_thinking(bot: Assistant) -> None:
    chunks = list(bot.stream("Who won the football World Cup in 2022?", user_id="stages", session_id="out"))
    assert kinds(chunks) == ["stage:searching", "text", "reply"]
    assert chunks[-1].reply is not None and chunks[-1].reply.route == "abstain"


@pytest.mark.parametrize(
    ("arguments", "error", "names"),
    [
        ({"collection": "no-such-collection"}, UnknownCollectionError, "no-such-collection"),
        ({"route": "large"}, ConfigurationError, "fallback_base_url"),
        ({"route": "sideways"}, InvalidInputError, "route"),
        ({"user_id": " "}, InvalidInputError, "user_id"),
        ({"session_id": "x\x00"}, InvalidInputError, "session id"),
        ({"instructions": "Be brief. " * 300}, InvalidInputError, "instructions"),
        ({"instructions": "bad\udc00"}, InvalidInputError, "instructions"),
        ({"max_tokens": 0}, InvalidInputError, "max_tokens"),
        ({"question": "  "}, InvalidInputError, "empty"),
    ],
)
def test_what_the_caller_got_wrong_is_raised_before_the_first_chunk(
    bot: Assistant, arguments: dict[str, object], error: type[Exception], names: str
) -> None:
    call: dict[str, object] = {"question": INSIDE, "collection": "handbook", **arguments}
    with pytest.raises(error, match=names):
        bot.stream(**call)  # type: ignore[arg-type]  # the call itself raises: no chunk was asked for


def test_too_long_instructions_say_how_long_they_are_and_the_limit(bot: Assistant) -> None:
    with pytest.raises(InvalidInputError) as refused:
        bot.ask(INSIDE, collection="handbook", instructions="Always answer in the style of a pirate. " * 40)
    limit = bot.pipeline.prompt.instruction_limit
    assert refused.value.what == "instructions"
    assert f"the limit is {limit} tokens" in refused.value.problem
    tokens = int(refused.value.problem.split("they are ")[1].split(" tokens")[0])
    assert tokens > limit


def test_instructions_follow_the_rules_in_the_system_message_and_never_join_the_documents(bot: Assistant) -> None:
    wish = "Answer in French and mention the page number."
    prepared = bot.prepare(INSIDE, user_id="stages", session_id="prompt", collection="handbook", instructions=wish)
    assert prepared.prompt is not None
    system, *_, asked = prepared.prompt.messages
    assert system.type == "system" and asked.type == "human"
    # Our rules first, untouched (documents are quoted data), then the caller's, marked as theirs.
    assert system.text.startswith(LOCAL_SYSTEM)
    assert system.text.index(wish) > len(LOCAL_SYSTEM) and "Instructions from the person asking" in system.text
    assert wish not in asked.text and asked.text.startswith(quote_documents("").split("\n")[0])
    plain = bot.prepare(INSIDE, user_id="stages", session_id="prompt", collection="handbook")
    assert plain.prompt is not None and wish not in plain.prompt.messages[0].text
    # The prompt budget counted them: the prompt grew by about their size, and still fits.
    assert prepared.prompt.tokens > plain.prompt.tokens
    assert prepared.prompt.tokens + bot.settings.llm_max_answer_tokens <= bot.settings.llm_context_tokens


def test_max_tokens_caps_the_local_model_s_answer(bot: Assistant) -> None:
    free = bot.ask(INSIDE, user_id="stages", session_id="free", collection="handbook", route="local")
    assert free.finish_reason == "stop" and free.usage["completion_tokens"] > 4
    capped = bot.ask(INSIDE, user_id="stages", session_id="capped", collection="handbook", route="local", max_tokens=4)
    assert capped.finish_reason == "length"
    assert 0 < capped.usage["completion_tokens"] <= 4
    assert 0 < bot.pipeline.count_tokens(capped.answer) <= 4  # quotes and notes included, as OpenAI's cap
    stored = bot.history("stages", "capped")[-1]
    assert stored.content == capped.answer
