"""What the large model is sent, and which of its failures fall back to the local answer.

Only the standalone question, the last exchange and the passages go out, never the
whole history. Only named transport and API errors count as "the large model is
unavailable"; anything else is a bug of ours and is raised.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from memory.store import StoredMessage
from retrievers.passage import Passage

__all__ = ["FALLBACK_SYSTEM", "fallback_errors", "fallback_messages"]

FALLBACK_SYSTEM = (
    "You are a careful assistant for a team's internal documents. Answer from the numbered "
    "passages when they are relevant and cite them as [n]. If they do not contain the answer, "
    "say that the documents do not cover it, then answer briefly from general knowledge and say so."
)


def fallback_errors() -> tuple[type[BaseException], ...]:
    """Transport and API errors of the large-model client, imported only when needed."""
    errors: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        import httpx

        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    try:
        import openai

        errors.append(openai.APIError)
    except ImportError:
        pass
    return tuple(errors)


def fallback_messages(
    question: str, passages: Sequence[Passage], history: Sequence[StoredMessage]
) -> list[BaseMessage]:
    context = "\n\n".join(f"[{n}] {p.citation}\n{p.text}" for n, p in enumerate(passages, start=1))
    system = FALLBACK_SYSTEM + (f"\n\nPassages:\n{context}" if context else "\n\nNo passages were found.")
    last_exchange = list(history[-2:])
    turns: list[BaseMessage] = [
        AIMessage(m.content) if m.role == "assistant" else HumanMessage(m.content) for m in last_exchange
    ]
    return [SystemMessage(system), *turns, HumanMessage(question)]
