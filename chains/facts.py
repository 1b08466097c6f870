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

from assistant.capabilities import GeneratesJSON
from chains.evidence import cosine
from memory.facts import MAX_FACT_CHARS, Fact
from retrievers.words import REFERRING_WORDS, content_words, entities, sentences

__all__ = [
    "REWRITE_SCHEMA",
    "ExtractedFact",
    "FactExtractor",
    "JsonGenerator",
    "grounded",
    "recall_facts",
    "statements_about_user",
    "what_is_asked",
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
# "As a French employee, what ...": a leading clause about who asks.
_AS_A = re.compile(r"^As (?:a|an) [^,?]{2,60},\s*", re.IGNORECASE)
# Words a rewrite adds around what the user said ("The user wants brief answers").
_FRAME = frozenset("user users wants want prefers prefer likes like".split())
_STEM = 5


@dataclass(frozen=True)
class ExtractedFact:
    kind: str  # "fact" or "preference"
    text: str


def _clauses(message: str) -> list[str]:
    return [c.strip() for s in sentences(message) for c in s.split(";") if c.strip()]


def _about_user(clause: str) -> ExtractedFact | None:
    if clause.endswith("?") or _QUESTION_START.match(clause) or len(clause.split()) < 2:
        return None
    if _ASKS_FOR_A_WAY.search(clause):
        return ExtractedFact("preference", clause)
    if _FIRST_PERSON.search(clause) and len(clause.split()) >= 3:
        return ExtractedFact("fact", clause)
    return None


def statements_about_user(message: str) -> list[ExtractedFact]:
    """The message's sentences that state something about its author, with their kind."""
    found = [fact for clause in _clauses(message) if (fact := _about_user(clause)) is not None]
    return found[:_MAX_PER_MESSAGE]


def _without_role(clause: str) -> str:
    """ "As a French employee, what is ..." → "What is ..." (kept when the role names a code)."""
    match = _AS_A.match(clause)
    if match is None or entities(match.group(0)) or match.end() == len(clause):
        return clause
    rest = clause[match.end() :]
    return rest[0].upper() + rest[1:]


def what_is_asked(message: str) -> str:
    """The message without its sentences about its author, when the rest stands alone.

    Search runs on this. "My name is Emily. Where do visitors park?" must find what
    "Where do visitors park?" finds: the name moved the question's embedding, and the
    best passage fell below the relevance threshold for some names and not others (the
    bias probes of `assistant eval bias` showed it). A statement naming a code or model
    ("My X200 shows E17.") is the question's subject and stays, as does everything when
    what remains leans on it ("What should I do?"). A leading "As a French employee,"
    goes the same way. The prompt still gets the whole message.
    """
    clauses = _clauses(message)
    kept = [c for c in clauses if _about_user(c) is None or entities(c)]
    kept = [_without_role(c) for c in kept]
    if kept == clauses or not kept:
        return message
    rest = " ".join(kept)
    leans_on_it = any(w in REFERRING_WORDS for w in re.findall(r"[a-z']+", rest.lower()))
    return message if leans_on_it or len(content_words(rest)) < 2 else rest


class FactExtractor:
    def __init__(self, generate_json: JsonGenerator | None) -> None:
        self.generate_json = generate_json

    @classmethod
    def for_model(cls, llm: BaseChatModel) -> FactExtractor:
        """Rewrites by the model when it can decode under a JSON schema; quotes otherwise."""
        return cls(llm.generate_json if isinstance(llm, GeneratesJSON) else None)

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
