"""The Python API for applications: aask / astream on asyncio, close() and context
managers, and retriever(k=). On the real bundled model, embedder, Chroma and SQLite."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from assistant import Assistant, InvalidInputError, Settings, UnknownCollectionError
from assistant.llamacpp import ChatLlamaCpp
from chains.reply import ReplyChunk
from tests.conftest import HANDBOOK

pytestmark = pytest.mark.llm

INSIDE = "How often is the X200 serviced?"


async def ticking(interval: float, ticks: list[float]) -> None:
    while True:
        ticks.append(time.monotonic())
        await asyncio.sleep(interval)


def test_aask_answers_without_blocking_the_event_loop(bot: Assistant) -> None:
    async def main() -> tuple[object, list[float], float]:
        ticks: list[float] = []
        ticker = asyncio.create_task(ticking(0.05, ticks))
        started = time.monotonic()
        reply = await bot.aask(INSIDE, user_id="async", session_id="aask", collection="handbook", route="local")
        took = time.monotonic() - started
        ticker.cancel()
        return reply, ticks, took

    reply, ticks, took = asyncio.run(main())
    assert getattr(reply, "route", None) == "local" and "6 months" in getattr(reply, "answer", "")
    # The loop kept running while the model worked: ticks all along, none far apart.
    # (Blocked, it would tick once before and once after.) Loose bounds: the machine may be busy.
    assert took > 0.5 and len(ticks) >= max(5, took / 0.05 / 4)
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 2.0
    assert bot.history("async", "aask")[-1].content == getattr(reply, "answer", None)


def test_astream_yields_stages_text_and_the_reply_as_they_come(bot: Assistant) -> None:
    async def main() -> list[tuple[float, ReplyChunk]]:
        timed: list[tuple[float, ReplyChunk]] = []
        async for chunk in bot.astream(INSIDE, user_id="async", session_id="astream", collection="handbook"):
            timed.append((time.monotonic(), chunk))
        return timed

    timed = asyncio.run(main())
    chunks = [c for _, c in timed]
    assert chunks[0].stage == "searching" and "thinking" in [c.stage for c in chunks]
    assert chunks[-1].reply is not None and chunks[-1].reply.answer == "".join(c.text for c in chunks)
    # Delivered one by one, not gathered at the end: the first arrives well before the last.
    assert timed[-1][0] - timed[0][0] > 0.2


def test_astream_raises_the_caller_s_mistakes_before_any_chunk(bot: Assistant) -> None:
    async def main() -> list[ReplyChunk]:
        return [c async for c in bot.astream(INSIDE, collection="no-such-collection")]

    with pytest.raises(UnknownCollectionError):
        asyncio.run(main())

    async def capped() -> object:
        return await bot.aask(INSIDE, collection="handbook", max_tokens=-1)

    with pytest.raises(InvalidInputError, match="max_tokens"):
        asyncio.run(capped())


def test_cancelling_astream_stops_the_turn_and_frees_the_model(bot: Assistant) -> None:
    async def main() -> tuple[list[str | None], object]:
        seen: list[str | None] = []
        stream = bot.astream(INSIDE, user_id="async", session_id="cancel", collection="handbook", route="local")
        async for chunk in stream:
            seen.append(chunk.stage)
            if chunk.stage == "thinking":  # the local model is about to generate
                break
        await stream.aclose()
        # The next turn needs the model's lock: it would wait forever if the cancelled one kept it.
        again = await asyncio.wait_for(
            bot.aask(INSIDE, user_id="async", session_id="after", collection="handbook", route="local"), timeout=300
        )
        return seen, again

    seen, again = asyncio.run(main())
    assert seen == ["searching", "thinking"]
    assert getattr(again, "route", None) == "local"
    assert "cancel" not in {s.session_id for s in bot.sessions("async")}  # nothing stored half-done

    async def cancelled_task() -> None:
        task = asyncio.create_task(bot.aask(INSIDE, user_id="async", session_id="task", collection="handbook"))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_task())
    llm = bot.llm
    assert isinstance(llm, ChatLlamaCpp)
    deadline = time.monotonic() + 300
    while not llm._lock.acquire(timeout=1):  # released once the worker thread reaches the next chunk
        assert time.monotonic() < deadline, "the cancelled turn kept the llama.cpp lock"
    llm._lock.release()


def test_close_and_the_context_managers_release_the_model_store_and_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "state")
    with Assistant.from_settings(settings) as bot:
        bot.ingest(HANDBOOK / "faq.txt", collection="faq")
        assert bot.ask("What is the extension for building security?", collection="faq").answer
        llm = bot.llm
        assert isinstance(llm, ChatLlamaCpp) and llm.loaded
    assert bot.closed and not llm.loaded
    assert bot.memory.engine.pool.checkedout() == 0
    bot.close()  # a second close does nothing

    async def main() -> bool:
        async with Assistant.from_settings(settings) as again:  # the same store opens again after a close
            assert again.collections() == ["faq"]
            assert len(again.search("security extension", "faq", k=1)) == 1
        return again.closed

    assert asyncio.run(main())


def test_retriever_takes_k(bot: Assistant) -> None:
    assert len(bot.retriever("handbook", k=2).invoke("X200 maintenance and warranty")) == 2
    assert len(bot.retriever("handbook", k=1).invoke("X200 maintenance and warranty")) == 1
    assert len(bot.retriever("handbook").invoke("X200 maintenance and warranty")) == bot.settings.top_k > 2
    with pytest.raises(InvalidInputError, match="k"):
        bot.retriever("handbook", k=0)
