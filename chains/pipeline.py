"""One conversational turn: recall → condense → retrieve → route → draft → route → escalate → cite → remember.

`turn()` checks everything the caller can get wrong at once, then gives an iterator
of ReplyChunks: the stages ("searching", "thinking", "escalating") as the turn reaches
them, the text as it is produced, then the Reply; `ask` and `stream` share this one
path. When the turn may still be escalated, the local draft is generated whole before
anything is shown, because the router may reject it; otherwise (no large model,
route="local", a local-only collection) local tokens stream as they come. The large
model's answer streams once the router has chosen it. The local model stops once its
answer is complete: after `answer_sentences` backed sentences, or at a repetition.

What follows the answer (learning facts from the question, folding old turns into the
summary) runs after the Reply on a background worker (chains.followups); the turn is
stored before the Reply so that it carries what was stored. Each stage's time is in
`Reply.timings`; the follow-up's in `reply.after`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage

from assistant.capabilities import StopsWhenTold
from assistant.errors import ConfigurationError, InvalidInputError, InvalidQuestionError
from chains.citing import EXTRACTIVE_LEAD, QUOTED_SENTENCES, abstention, cited, evidence_tail
from chains.condense import Condensed, Condenser, needs_context
from chains.escalate import Escalator, Outcome, large_messages
from chains.evidence import Evidence, evidence_signals, select_evidence
from chains.facts import FactExtractor, what_is_asked
from chains.followups import AfterTurn, FollowUps
from chains.history import ConversationRecall
from chains.prompt import BuiltPrompt, PromptBuilder
from chains.reply import FinishReason, Reply, ReplyChunk
from chains.route import Decision, RequestedRoute, RoutePolicy, check_requested_route, draft_signals
from chains.untrusted import REMOVED, set_aside_instructions
from chains.verify import SentenceGate, Verified, Verifier
from memory.records import NewMessage, StoredMessage, TurnIds, check_id
from memory.store import SQLMemory
from retrievers.passage import Passage
from retrievers.retriever import PassageRetriever

__all__ = ["MAX_QUESTION_CHARS", "AnswerPipeline", "Prepared"]

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 4000


@dataclass
class Prepared:
    """A turn up to its local prompt: everything the router looks at before a draft."""

    question: str  # as asked, whitespace normalised
    clock: _Clock
    condensed: Condensed
    passages: list[Passage]
    relevant: list[Passage]
    history: list[StoredMessage]
    signals: dict[str, Any]
    collection: str
    local_only: bool
    requested: RequestedRoute = "auto"
    evidence: list[Evidence] = field(default_factory=list)
    prompt: BuiltPrompt | None = None  # None when no passage is relevant
    query: str = ""  # what was searched: the condensed question's ask
    outside: str | None = None  # why retrieval says the documents do not answer it; None when they may
    instructions: str | None = None  # the caller's own, checked to fit the prompt
    max_tokens: int | None = None  # the caller's cap on this turn's answer


@dataclass(frozen=True)
class _Request:
    """A turn's arguments once checked: what the caller can get wrong is refused before any work."""

    question: str
    user_id: str
    session_id: str
    collection: str
    retriever: PassageRetriever
    requested: RequestedRoute
    instructions: str | None
    max_tokens: int | None


@dataclass
class _Generated:
    text: str
    model: str
    logprobs: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int
    verified: Verified | None = None  # local drafts: the sentence check; None for the large model
    finish_reason: FinishReason = "stop"
    check_ms: float = 0.0  # of the generation's time, spent checking sentences
    cached_tokens: int | None = None  # prompt tokens the model took from its last prompt, when it says

    @property
    def shown(self) -> str:
        """What may be shown as the answer: the backed sentences of a local draft, the large model's text."""
        return self.text if self.verified is None else self.verified.text


class AnswerPipeline:
    def __init__(
        self,
        *,
        llm: BaseChatModel,
        count_tokens: Callable[[str], int],
        retriever: Callable[[str], PassageRetriever],
        memory: SQLMemory,
        recall: ConversationRecall,
        policy: RoutePolicy,
        prompt: PromptBuilder,
        facts: FactExtractor | None = None,
        escalator: Escalator | None = None,
        ready: Callable[[], None] | None = None,
        answer_sentences: int = 2,
    ) -> None:
        self.llm = llm
        self.count_tokens = count_tokens
        self.retriever = retriever
        self.memory = memory
        self.recall = recall
        self.policy = policy
        self.prompt = prompt
        self.facts = facts
        self.escalator = escalator
        self.condenser = Condenser(llm)
        self.ready = ready  # waits until the models are loaded (they may load while the rest is set up)
        self.answer_sentences = answer_sentences
        self.followups = FollowUps()

    def turn(
        self,
        question: str,
        *,
        user_id: str,
        session_id: str,
        collection: str,
        route: str = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ReplyChunk]:
        """Stage and text chunks, then the Reply, whose answer is exactly the text that was shown.

        Raises what the caller got wrong here, before the iterator yields anything."""
        request = self._check(
            question,
            user_id=user_id,
            session_id=session_id,
            collection=collection,
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )
        return self._chunks(request)

    def _check(
        self,
        question: str,
        *,
        user_id: str,
        session_id: str,
        collection: str,
        route: str = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> _Request:
        """The turn's arguments, checked: ids, route, question, collection, instructions, max_tokens."""
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        requested = check_requested_route(route)
        question = _check_question(question)
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise InvalidInputError("max_tokens", f"must be a whole number of at least 1, got {max_tokens!r}")
        retriever = self.retriever(collection)  # unknown collection fails before any work
        if requested == "large" and not retriever.local_only and self.escalator is None:
            raise ConfigurationError(
                "fallback_base_url",
                "is not set, so route='large' has no large model to ask",
                "Set fallback_base_url and fallback_model, pass fallback= to the Assistant, or use route='auto'.",
            )
        checked = self.prompt.check_instructions(instructions)
        return _Request(question, user_id, session_id, collection, retriever, requested, checked, max_tokens)

    def _chunks(self, request: _Request) -> Iterator[ReplyChunk]:
        shown: list[str] = []
        audit_ids: list[int] = []
        user_id, session_id = request.user_id, request.session_id
        cut = False  # the shown text reached the caller's max_tokens
        yield ReplyChunk("", stage="searching")
        prepared = self._prepare(request)
        clock = prepared.clock
        for chunk in self._turn(prepared, user_id, session_id, audit_ids):
            if chunk.reply is None:
                if chunk.text and "first_token_ms" not in clock.laps:
                    clock.laps["first_token_ms"] = clock.total()
                if chunk.text and request.max_tokens is not None:
                    # The cap is on what the caller receives, as OpenAI's max_tokens is: the
                    # quoted evidence and notes after the model's text count too.
                    if cut:
                        continue
                    text, cut = self._within("".join(shown), chunk.text, request.max_tokens)
                    chunk = replace(chunk, text=text)
                shown.append(chunk.text)
                yield chunk
                continue
            reply = replace(
                chunk.reply,
                answer="".join(shown),
                finish_reason="length" if cut else chunk.reply.finish_reason,
                user_id=user_id,
                session_id=session_id,
                collection=request.collection,
            )
            begun = time.perf_counter()
            ids = self._remember(user_id, session_id, reply)
            self.memory.escalations.link(audit_ids, ids.answer_id)
            stored = round((time.perf_counter() - begun) * 1000, 1)
            timings = {**reply.timings, "store_ms": stored, "total_ms": clock.total()}
            after = self._follow_up(user_id, session_id, reply.question, ids.question_id)
            yield ReplyChunk("", replace(reply, timings=timings, after=after))

    def _within(self, before: str, text: str, cap: int) -> tuple[str, bool]:
        """The longest word-boundary prefix of `text` that keeps `before + text` within `cap`
        tokens, and whether any of it was left out."""
        if self.count_tokens(before + text) <= cap:
            return text, False
        pieces = re.split(r"(?<=\s)", text)
        kept = ""
        for piece in pieces:
            if self.count_tokens(before + kept + piece) > cap:
                break
            kept += piece
        return kept.rstrip(), True

    def prepare(
        self,
        question: str,
        *,
        user_id: str,
        session_id: str,
        collection: str,
        route: str = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> Prepared:
        """Everything before generation: recall, condense, retrieve, evidence, prompt.

        Everything the caller can get wrong is checked first, before any model runs."""
        request = self._check(
            question,
            user_id=user_id,
            session_id=session_id,
            collection=collection,
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )
        return self._prepare(request)

    def _prepare(self, request: _Request) -> Prepared:
        question, user_id, session_id = request.question, request.user_id, request.session_id
        retriever, requested, collection = request.retriever, request.requested, request.collection
        clock = _Clock()
        if self.ready is not None:
            self.ready()
        clock.lap("load_ms")
        self.followups.wait(user_id)  # the facts and summary of this user's last turns
        history, summary = self.recall.history(user_id, session_id)
        clock.lap("recall_ms")
        previous = [str(m.signals.get("standalone_question") or m.content) for m in history if m.role == "user"]
        answers = " ".join(m.content for m in history[-2:] if m.role == "assistant")
        condensed = self.condenser.condense(question, previous, answers)
        clock.lap("condense_ms")

        asked = what_is_asked(condensed.question)
        retrieval = retriever.retrieve(asked)
        # Document text is data: what in it speaks to the assistant goes no further.
        passages, _ = set_aside_instructions(retrieval.passages)
        signals: dict[str, Any] = {
            **self.policy.retrieval_signals(retrieval),
            "condensed_by": condensed.method,
            "requested_route": requested,
            "local_only": retriever.local_only,
        }
        clock.lap("retrieve_ms")
        relevant = self.policy.relevant(passages)
        signals["instructions_removed"] = sum(p.text.count(REMOVED) for p in relevant)
        evidence = select_evidence(asked, relevant, retriever.embeddings) if relevant else []
        signals.update(evidence_signals(asked, evidence, retrieval.language))
        signals["keyword_language"] = retrieval.language
        outside = self.policy.outside(signals)
        if outside:
            relevant, evidence = [], []
        prepared = Prepared(
            question,
            clock,
            condensed,
            passages,
            relevant,
            history,
            signals,
            collection,
            retriever.local_only,
            requested,
            evidence,
            query=asked,
            outside=outside,
            instructions=request.instructions,
            max_tokens=request.max_tokens,
        )
        if relevant:
            facts = self.recall.facts(user_id, condensed.question, retriever.embeddings)
            prepared.prompt = self.prompt.build(
                condensed.question,
                relevant,
                prepared.evidence,
                history,
                summary=summary,
                facts=facts,
                instructions=request.instructions,
            )
            prepared.relevant = prepared.prompt.passages
            signals["context_fit"] = prepared.prompt.context_fit
            signals["facts_recalled"] = len(facts)
            clock.lap("prompt_ms")
        return prepared

    def decide(self, prepared: Prepared, *, drafted: bool) -> Decision:
        return self.policy.decide(
            prepared.signals,
            requested=prepared.requested,
            local_only=prepared.local_only,
            collection=prepared.collection,
            drafted=drafted,
        )

    def draft(self, prepared: Prepared, *, stream: bool) -> Generator[ReplyChunk, None, _Generated]:
        """The local model's answer from the prepared prompt; its confidence signals join `prepared.signals`."""
        assert prepared.prompt is not None
        language = str(prepared.signals.get("keyword_language") or "english")
        gate = SentenceGate(
            Verifier(prepared.relevant, prepared.condensed.question, language=language), enough=self.answer_sentences
        )
        yield ReplyChunk("", stage="thinking")
        # A small model's first paragraph is its answer; what follows is mostly rambling.
        generated = yield from self._generate(
            self.llm,
            prepared.prompt.messages,
            stream=stream,
            stop=["\n\n"],
            gate=gate,
            max_tokens=prepared.max_tokens,
        )
        clock = prepared.clock
        clock.lap("generate_ms")
        generated.verified = gate.verified
        quoted = [e.sentence for e in prepared.evidence[:QUOTED_SENTENCES]]
        prepared.signals.update(draft_signals(generated.logprobs, gate.verified, quoted, language=language))
        clock.lap("checks_ms")
        # The sentences were checked as they were generated: that time is the checks', not the model's.
        clock.laps["generate_ms"] = round(clock.laps["generate_ms"] - generated.check_ms, 1)
        clock.laps["checks_ms"] = round(clock.laps["checks_ms"] + generated.check_ms, 1)
        return generated

    def large_request(self, prepared: Prepared) -> list[BaseMessage]:
        """What the large model is sent for this turn (and nothing more)."""
        follow_up = bool(prepared.history) and needs_context(prepared.question)
        return large_messages(
            prepared.condensed.question,
            prepared.relevant,
            prepared.history,
            follow_up=follow_up,
            instructions=prepared.instructions,
        )

    def _turn(self, prepared: Prepared, user_id: str, session_id: str, audit_ids: list[int]) -> Iterator[ReplyChunk]:
        signals, relevant, evidence = prepared.signals, prepared.relevant, prepared.evidence
        live = not (self.escalator is not None and self.policy.may_escalate(prepared.requested, prepared.local_only))
        decision = self.decide(prepared, drafted=False)
        generated: _Generated | None = None
        shown = False
        if decision.route == "draft":
            generated = yield from self.draft(prepared, stream=live)
            shown = live and bool(generated.shown)
            decision = self.decide(prepared, drafted=True)
            if decision.route == "abstain" and shown:
                decision = decision.shown_anyway()

        if decision.route == "large":
            assert self.escalator is not None
            if generated is not None:  # kept: the large model's answer labels it (assistant eval routing --fit)
                signals["local_draft"] = generated.shown
            outcome = yield from self._escalate(prepared, decision.reason, user_id, session_id)
            audit_ids.extend(outcome.audit_ids)
            prepared.clock.lap("large_ms")
            if outcome.answer is not None:
                answer = outcome.answer
                generated = _Generated(
                    answer.text,
                    answer.model,
                    [],
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    finish_reason=answer.finish_reason,
                )
                shown = True
                if outcome.note:  # cut off mid-stream: what was shown stays, marked
                    decision = replace(decision, note=outcome.note, low_confidence=True)
            else:
                if generated is None and prepared.prompt is not None:
                    generated = yield from self.draft(prepared, stream=True)
                    shown = bool(generated.shown)
                decision = decision.declined(outcome.problem, has_draft=generated is not None, note=outcome.note)

        if decision.route == "local" and generated is not None and not shown:
            yield ReplyChunk(generated.shown or EXTRACTIVE_LEAD)
        if decision.route == "abstain":
            yield ReplyChunk(abstention(prepared.collection, prepared.condensed.question, prepared.passages))
        sources = cited(relevant, evidence, decision)
        tail = evidence_tail(evidence, decision)
        if tail:
            yield ReplyChunk(tail)
        if decision.note:
            yield ReplyChunk(f"\n\n({decision.note})")

        usage = {
            "prompt_tokens": generated.prompt_tokens if generated else 0,
            "completion_tokens": generated.completion_tokens if generated else 0,
        }
        if generated is not None and generated.cached_tokens is not None:
            usage["cached_tokens"] = generated.cached_tokens  # as OpenAI's prompt_tokens_details.cached_tokens
        yield ReplyChunk(
            "",
            Reply(
                answer="",  # filled in by turn() from the text shown
                sources=sources,
                route=decision.route,  # type: ignore[arg-type]
                reason=decision.reason,
                model=generated.model if generated and decision.route != "abstain" else "",
                question=prepared.question,
                standalone_question=prepared.condensed.question,
                low_confidence=decision.low_confidence,
                evidence=evidence[0].sentence if evidence else "",
                signals=signals,
                usage=usage,
                timings={**prepared.clock.laps, "total_ms": prepared.clock.total()},
                finish_reason=generated.finish_reason if generated else "stop",  # the model was cut at the cap
            ),
        )

    def _escalate(
        self, prepared: Prepared, reason: str, user_id: str, session_id: str
    ) -> Generator[ReplyChunk, None, Outcome]:
        """The large model's answer, streamed as it arrives (after the budget check); its Outcome."""
        assert self.escalator is not None
        messages = self.large_request(prepared)
        cap = prepared.max_tokens
        over = self.escalator.over_budget(messages, user_id=user_id, session_id=session_id, max_tokens=cap)
        if over:
            return Outcome(None, over, "Answered locally: the large-model budget is used up.")
        yield ReplyChunk("", stage="escalating")
        pieces = self.escalator.stream(
            messages,
            reason=reason,
            user_id=user_id,
            session_id=session_id,
            collection=prepared.collection,
            max_tokens=cap,
        )
        try:
            while True:
                try:
                    piece = next(pieces)
                except StopIteration as done:
                    outcome: Outcome = done.value
                    return outcome
                yield ReplyChunk(piece)
        finally:
            pieces.close()  # a caller who stops reading ends the call (and its audit row) now

    def _generate(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        *,
        stream: bool,
        stop: list[str] | None = None,
        gate: SentenceGate | None = None,
        max_tokens: int | None = None,
    ) -> Generator[ReplyChunk, None, _Generated]:
        """Runs the model; yields its text only when `stream` (through `gate`: only checked
        sentences, and generation stops once the gate has enough, or at a repetition); returns a _Generated."""
        merged: AIMessageChunk | None = None
        started = False
        released = 0
        checking = 0.0
        # Only ever lower than the configured answer length: the prompt budget keeps that much free.
        options: dict[str, Any] = {"max_tokens": min(max_tokens, self.prompt.answer_tokens)} if max_tokens else {}
        told = False  # whether the model stops itself when the gate says so
        if gate is not None and isinstance(model, StopsWhenTold):
            checked = gate
            options.update(model.halting(lambda: checked.stop))
            told = True
        for chunk in model.stream(messages, stop=stop, **options):
            merged = chunk if merged is None else merged + chunk
            text = chunk.text if started else chunk.text.lstrip()
            started = started or bool(text)
            if gate is None:
                if stream and text:
                    yield ReplyChunk(text)
                continue
            if gate.stop:  # told to stop: what is left of the stream is its closing usage
                continue
            begun = time.perf_counter()
            passed = gate.feed(chunk.text)
            checking += time.perf_counter() - begun
            for sentence in passed:
                if stream:
                    yield ReplyChunk(sentence if not released else f" {sentence}")
                released += 1
            if gate.stop and not told:
                break  # this model cannot be told: its stream is cut (and its usage lost)
        if gate is not None:
            begun = time.perf_counter()
            passed = gate.close()
            checking += time.perf_counter() - begun
            for sentence in passed:
                if stream:
                    yield ReplyChunk(sentence if not released else f" {sentence}")
                released += 1
        if merged is None:
            merged = AIMessageChunk(content="")
        usage: dict[str, Any] = dict(merged.usage_metadata or {})
        logprobs = (merged.response_metadata.get("logprobs") or {}).get("content") or []
        name = merged.response_metadata.get("model_name") or getattr(model, "model_name", "") or type(model).__name__
        return _Generated(
            text=merged.text.strip(),
            model=str(name),
            logprobs=list(logprobs),
            prompt_tokens=int(usage.get("input_tokens", 0)),
            completion_tokens=int(usage.get("output_tokens", 0)),
            finish_reason="length" if merged.response_metadata.get("finish_reason") == "length" else "stop",
            check_ms=round(checking * 1000, 1),
            cached_tokens=(usage.get("input_token_details") or {}).get("cache_read"),
        )

    def _follow_up(self, user_id: str, session_id: str, message: str, message_id: int) -> Future[AfterTurn]:
        """Learning from the question and refreshing the summary, on the background worker."""
        return self.followups.submit(
            user_id,
            {
                "learn": partial(self._learn, user_id, message, message_id),
                "summary": partial(self.recall.refresh_summary, user_id, session_id),
            },
        )

    def _learn(self, user_id: str, message: str, message_id: int) -> list[str]:
        """Store what the user said about themselves in this message; the facts' texts."""
        if self.facts is None:
            return []
        learned = self.facts.extract(message)
        for fact in learned:
            self.memory.facts.add(user_id, fact.kind, fact.text, quote=message, source_message_id=message_id)
        return [f.text for f in learned]

    def _remember(self, user_id: str, session_id: str, reply: Reply) -> TurnIds:
        question = NewMessage(
            role="user",
            content=reply.question,
            token_count=self.count_tokens(reply.question),
            signals={"standalone_question": reply.standalone_question},
        )
        answer = NewMessage(
            role="assistant",
            content=reply.answer,
            token_count=reply.usage.get("completion_tokens") or self.count_tokens(reply.answer),
            route=reply.route,
            model=reply.model or None,
            reason=reply.reason,
            sources=[s.to_dict() for s in reply.sources],
            signals={
                **reply.signals,
                "low_confidence": reply.low_confidence,
                **reply.timings,
                "collection": reply.collection,  # a continued session without a named collection goes on in it
            },
        )
        return self.memory.add_turn(user_id, session_id, question, answer)


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self.last) * 1000, 1)
        self.last = now

    def total(self) -> float:
        return round((time.perf_counter() - self.start) * 1000, 1)


def _check_question(question: str) -> str:
    text = " ".join((question or "").split())
    if not text:
        raise InvalidQuestionError("the question is empty; ask something about the documents")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"the question has {len(text)} characters; the limit is {MAX_QUESTION_CHARS}. Shorten it."
        )
    return text
