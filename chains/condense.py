"""Condense a follow-up ("And its warranty?") into a standalone question.

The small model is asked to rewrite it, and its rewrite is checked: it must keep
every content word of the follow-up, bring in something from the conversation, and
add nothing else: every content word it adds must come from the conversation, so
neither the model's own knowledge nor the prompt's example (the "Z9 drill") can reach
a rewrite.
A 135M model fails that check often, so a deterministic rewrite backs it: the
referring word is replaced by the thing the previous question named (a model number,
a code), or the previous question is attached as context.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from retrievers.words import REFERRING_WORDS, content_words, entities

__all__ = ["Condensed", "Condenser", "needs_context"]

log = logging.getLogger(__name__)

_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Rewrite the follow-up question as one standalone question. Replace words like it, its, "
            "they and that with what they refer to in the previous question. Output only the question.",
        ),
        ("human", "Previous question: What voltage does the Z9 drill use?\nFollow-up: How heavy is it?"),
        ("ai", "How heavy is the Z9 drill?"),
        ("human", "Previous question: {previous}\nFollow-up: {question}"),
    ]
)
_LEADING_LINK = re.compile(r"^\s*(and|also|so|then|ok|okay|what about|how about)\b[\s,]*", re.IGNORECASE)


@dataclass(frozen=True)
class Condensed:
    question: str
    method: str  # "unchanged", "model" or "rule"


def needs_context(question: str) -> bool:
    """A follow-up that leans on the previous turn: a referring word, a link word, or too few words."""
    words = re.findall(r"[a-z']+", question.lower())
    return bool(
        _LEADING_LINK.match(question) or any(w in REFERRING_WORDS for w in words) or len(content_words(question)) < 2
    )


class Condenser:
    def __init__(self, llm: BaseChatModel | None) -> None:
        self.chain: Runnable[dict[str, str], str] | None = (
            _PROMPT | llm.bind(max_tokens=48) | StrOutputParser() if llm is not None else None
        )

    def condense(self, question: str, previous_questions: list[str], conversation: str = "") -> Condensed:
        """`previous_questions`: the user's earlier standalone questions, oldest first;
        `conversation`: the rest of the recent conversation (answers), which a rewrite may also draw on."""
        if not previous_questions or not needs_context(question):
            return Condensed(question, "unchanged")
        previous = previous_questions[-1]
        if self.chain is not None:
            rewrite = " ".join(self.chain.invoke({"previous": previous, "question": question}).split())
            said = " ".join([*previous_questions, conversation])
            if _acceptable(rewrite, question, previous, said):
                return Condensed(rewrite, "model")
            log.debug("rejected model rewrite %r of %r", rewrite, question)
        return Condensed(_rule_rewrite(question, previous), "rule")


def _acceptable(rewrite: str, question: str, previous: str, said: str = "") -> bool:
    """Keeps the follow-up's words, borrows from the previous question, and adds only words of the conversation."""
    got = {_base(w) for w in content_words(rewrite)}
    wanted = {_base(w) for w in content_words(question)}
    borrowed = {_base(w) for w in content_words(previous)} - wanted
    known = wanted | {_base(w) for w in content_words(f"{previous} {said}")}
    return (
        bool(rewrite)
        and len(rewrite) <= 3 * len(question) + 80
        and wanted <= got
        and bool(got & borrowed)
        and got <= known
    )


def _base(word: str) -> str:
    """Plural and possessive folded, so "warranties" of a rewrite is the "warranty" of the conversation."""
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _rule_rewrite(question: str, previous: str) -> str:
    body = _LEADING_LINK.sub("", question).strip() or question.strip()
    named = entities(previous)
    if named:
        subject = f"the {named[0]}"
        replaced, count = re.subn(r"\bits\b", f"{subject}'s", body, flags=re.IGNORECASE)
        if not count:
            replaced, count = re.subn(r"\b(it|they|them|this|that)\b", subject, body, flags=re.IGNORECASE)
        if count:
            return replaced[0].upper() + replaced[1:]
    return f"{body[0].upper() + body[1:]} (following: {previous})"
