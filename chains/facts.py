"""Learn what users say about themselves, and recall it when it matters.

Statements about the user are found by rule: sentences that are not questions and
speak in the first person ("I run the billing database", "my team uses Debian"), or
ask for a way of answering ("answer briefly", "I prefer examples in Python"); the
same rule tells a preference from a fact. The local model then rewrites each one in
the third person under a JSON-schema grammar in llama.cpp, so its output is valid
JSON of the expected shape, or nothing. A rewrite must keep the sentence's own
words (a 135M model often swaps in words of its own); when it does not, the fact is
kept as the user's quoted words instead, so nothing invented is ever stored.

Recall: the user's preferences always reach the prompt; other facts only when they
are close in meaning to the question.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from chains.evidence import cosine
from memory.facts import MAX_FACT_CHARS, Fact
from retrievers.words import content_words, sentences

__all__ = [
    "REWRITE_SCHEMA",
    "ExtractedFact",
    "FactExtractor",
    "JsonGenerator",
    "grounded",
    "recall_facts",
    "statements_about_user",
]

log = logging.getLogger(__name__)

REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "pattern": '^The user [a-z][^"]{3,110}$'}},
    "required": ["text"],
}
JsonGenerator = Callable[[list[BaseMessage], dict[str, Any]], Any]

_PROMPT = 'Rewrite this sentence in the third person, starting with "The user": {sentence}'
_MAX_PER_MESSAGE = 3
_FIRST_PERSON = re.compile(r"\b(I|I'm|I am|I've|I'd|my|My|we|We|we're|We're|our|Our)\b")
_QUESTION_START = re.compile(
    r"^(how|what|why|when|where|which|who|whom|whose|can|could|do|does|did|is|are|was|were|should|would|will|"
    r"shall|may|might|must|has|have|had)\b",
    re.IGNORECASE,
)
_ASKS_FOR_A_WAY = re.compile(
    r"^(please\s+)?(always\s+|never\s+|don't\s+|do not\s+)?(answer|reply|respond|be|keep|use|explain|write|"
    r"give|call me|talk|speak)\b"
    r"|\bI\s+(prefer|'d like|would like|want|like)\b.*\b(answers?|repl(y|ies)|examples?|short|brief|briefly|"
    r"detail(ed)?|english|french|german|spanish|bullet|steps?|code|language)\b",
    re.IGNORECASE,
)
# Words a rewrite adds around what the user said ("The user wants brief answers").
_FRAME = frozenset("user users wants want prefers prefer likes like".split())
_STEM = 5


@dataclass(frozen=True)
class ExtractedFact:
    kind: str  # "fact" or "preference"
    text: str


def statements_about_user(message: str) -> list[ExtractedFact]:
    """The message's sentences that state something about its author, with their kind."""
    found = []
    clauses = [c.strip() for s in sentences(message) for c in s.split(";") if c.strip()]
    for sentence in clauses:
        if sentence.endswith("?") or _QUESTION_START.match(sentence) or len(sentence.split()) < 2:
            continue
        if _ASKS_FOR_A_WAY.search(sentence):
            found.append(ExtractedFact("preference", sentence))
        elif _FIRST_PERSON.search(sentence) and len(sentence.split()) >= 3:
            found.append(ExtractedFact("fact", sentence))
    return found[:_MAX_PER_MESSAGE]


class FactExtractor:
    def __init__(self, generate_json: JsonGenerator | None) -> None:
        self.generate_json = generate_json

    @classmethod
    def for_model(cls, llm: BaseChatModel) -> FactExtractor:
        """Rewrites by the model when it can decode under a JSON schema; quotes otherwise."""
        generate = getattr(llm, "generate_json", None)
        return cls(generate if callable(generate) else None)

    def extract(self, message: str) -> list[ExtractedFact]:
        learned = []
        for statement in statements_about_user(message):
            text = self._rewrite(statement.text)
            if text is None:
                text = f"The user said: “{statement.text.rstrip()}”"
            if len(text) <= MAX_FACT_CHARS:
                learned.append(ExtractedFact(statement.kind, text))
        return learned

    def _rewrite(self, sentence: str) -> str | None:
        if self.generate_json is None:
            return None
        output = self.generate_json([HumanMessage(_PROMPT.format(sentence=sentence))], REWRITE_SCHEMA)
        text = " ".join(str(output.get("text", "")).split()) if isinstance(output, dict) else ""
        if text and grounded(text, sentence):
            return text if text.endswith((".", "!")) else text + "."
        log.debug("rewrite %r of %r not kept", text, sentence)
        return None


def grounded(rewrite: str, sentence: str) -> bool:
    """The rewrite says what the sentence said: most of its own words (by their first letters)
    come from the sentence, and it keeps most of the sentence's words."""
    said = {w[:_STEM] for w in content_words(sentence) if w not in _FRAME}
    words = {w[:_STEM] for w in content_words(rewrite) if w not in _FRAME}
    if not words or not said:
        return False
    shared = len(words & said)
    return shared * 3 >= 2 * len(words) and shared * 2 >= len(said)


def recall_facts(
    question: str,
    facts: Sequence[Fact],
    embeddings: Embeddings,
    *,
    min_similarity: float,
    limit: int = 4,
    preferences: int = 3,
) -> list[Fact]:
    """The user's newest preferences, then the facts closest in meaning to the question."""
    chosen = [f for f in facts if f.kind == "preference"][:preferences]
    candidates = [f for f in facts if f.kind == "fact"][:50]
    if candidates and limit > 0:
        vectors = embeddings.embed_documents([question, *(f.content for f in candidates)])
        scored = sorted(
            ((cosine(vectors[0], v), f) for f, v in zip(candidates, vectors[1:], strict=True)),
            key=lambda pair: pair[0],
            reverse=True,
        )
        chosen += [f for score, f in scored[:limit] if score >= min_similarity]
    return chosen
