"""What a model may offer beyond LangChain's interfaces, named as Protocols.

A chat model or an embedder that has these methods gets the better behaviour; one that
has not still works: prompt budgets fall back to an estimate, facts are quoted rather
than rewritten. ChatLlamaCpp, ChatServedModel, the bundled embedders and the fakes of
`assistant.testing` implement them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage

__all__ = [
    "CountsTokens",
    "GeneratesJSON",
    "HasTokenLimit",
    "LoadsWeights",
    "StopsWhenTold",
    "approximate_tokens",
    "token_counter",
]


@runtime_checkable
class CountsTokens(Protocol):
    """Counts tokens with the model's own tokenizer (prompt budgets, chunk sizes)."""

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class GeneratesJSON(Protocol):
    """Answers under a JSON schema (grammar-constrained decoding); None when it cannot."""

    def generate_json(self, messages: list[BaseMessage], schema: dict[str, Any], max_tokens: int = 160) -> Any: ...


@runtime_checkable
class StopsWhenTold(Protocol):
    """A stream that ends once `halt()` turns true, still closing with its usage and log-probabilities
    (a stream broken off by its reader loses them); the stream options that ask for it."""

    def halting(self, halt: Callable[[], bool]) -> dict[str, Any]: ...


@runtime_checkable
class LoadsWeights(Protocol):
    """Loads its weights on demand; `load()` does it now (once, thread-safe), so that it can
    happen while the rest is set up (assistant.factory.ModelLoad)."""

    def load(self) -> Any: ...


@runtime_checkable
class HasTokenLimit(Protocol):
    """An embedder's longest input, in its tokens; longer text is truncated."""

    @property
    def max_tokens(self) -> int: ...


def approximate_tokens(text: str) -> int:
    """For models and embedders that expose no tokenizer: about four characters a token."""
    return max(1, len(text) // 4)


def token_counter(model: object) -> Callable[[str], int]:
    """The model's own token count when it has one, else the estimate."""
    return model.count_tokens if isinstance(model, CountsTokens) else approximate_tokens
