"""`assistant eval perplexity`: how well each local model predicts a collection's own text.

Perplexity is exp of the mean negative log-likelihood per token, read from llama.cpp's
logits with each model's own tokenizer. Models with different tokenizers cut the same
text into different numbers of tokens, so their per-token perplexities are not
comparable: a model with a coarser vocabulary has fewer, harder tokens. The same
total log-likelihood spread over the text's characters (bits per character) or words
(word-level perplexity) is, and those are the numbers to rank models by. Each text is
also scored with its words shuffled (same seed): a model that fits the domain finds
the real text far more likely than the same words in random order.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelUnavailableError

__all__ = ["ModelPerplexity", "PerplexityReport", "TextScore", "score_texts", "shuffled_words"]


@dataclass(frozen=True)
class TextScore:
    nll: float  # natural-log negative log-likelihood of the text's tokens, summed
    tokens: int
    chars: int
    words: int

    @property
    def bits_per_char(self) -> float:
        return self.nll / (self.chars * math.log(2)) if self.chars else float("nan")


@dataclass
class ModelPerplexity:
    model: str
    texts: int
    tokens: int
    chars: int
    words: int
    per_token: float
    per_word: float
    bits_per_char: float
    shuffled_per_word: float | None
    seconds: float
    bits_per_char_of_each: list[float] = field(default_factory=list)


@dataclass
class PerplexityReport:
    collection: str
    sample: int
    seed: int
    models: list[ModelPerplexity]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "perplexity", **asdict(self)}


def shuffled_words(text: str, seed: int) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def _aggregate(name: str, scores: list[TextScore], shuffled: list[TextScore] | None, seconds: float) -> ModelPerplexity:
    nll = sum(s.nll for s in scores)
    tokens, chars, words = (sum(getattr(s, f) for s in scores) for f in ("tokens", "chars", "words"))
    return ModelPerplexity(
        model=name,
        texts=len(scores),
        tokens=tokens,
        chars=chars,
        words=words,
        per_token=round(math.exp(nll / tokens), 3) if tokens else float("nan"),
        per_word=round(math.exp(nll / words), 3) if words else float("nan"),
        bits_per_char=round(nll / (chars * math.log(2)), 4) if chars else float("nan"),
        shuffled_per_word=(
            round(math.exp(sum(s.nll for s in shuffled) / max(1, sum(s.words for s in shuffled))), 3)
            if shuffled
            else None
        ),
        seconds=round(seconds, 2),
        bits_per_char_of_each=[round(s.bits_per_char, 4) for s in scores],
    )


class _Scorer:
    """One GGUF model loaded with the logits of every position kept (needed to score text)."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int | None) -> None:
        from llama_cpp import Llama

        if not path.is_file():
            raise ModelUnavailableError(str(path), "file not found", "Pass --model a GGUF file that exists.")
        try:
            self.llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, logits_all=True, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(
                str(path), f"llama.cpp cannot load it ({exc})", "Pass --model a complete GGUF model."
            ) from exc
        self.n_ctx = n_ctx
        bos = self.llama.token_bos()
        # The text is scored after a document boundary: BOS where the model has one, else EOS.
        self.start = bos if bos is not None and bos >= 0 else self.llama.token_eos()

    def score(self, text: str) -> TextScore:
        tokens = self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)[: self.n_ctx - 1]
        if not tokens:
            return TextScore(0.0, 0, 0, 0)
        scored = self.llama.detokenize(tokens).decode("utf-8", errors="ignore")  # the part that fit
        sequence = [self.start, *tokens]
        self.llama.reset()
        self.llama.eval(sequence)
        logits = np.asarray(self.llama.scores[: len(sequence) - 1], dtype=np.float64)
        peak = logits.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        chosen = logits[np.arange(len(tokens)), tokens]
        nll = float((log_norm - chosen).sum())
        return TextScore(nll, len(tokens), len(scored), len(scored.split()))

    def close(self) -> None:
        self.llama.close()


def score_texts(
    models: Sequence[Path],
    texts: list[str],
    *,
    collection: str,
    seed: int,
    n_ctx: int = 1024,
    n_threads: int | None = None,
    control: bool = True,
    on_text: Callable[[str, int], None] | None = None,
) -> PerplexityReport:
    """Each model's perplexity on the texts (and on the same words shuffled, with `control`)."""
    results = []
    for path in models:
        started = time.perf_counter()
        scorer = _Scorer(Path(path), n_ctx, n_threads)
        try:
            scores, shuffled = [], []
            for n, text in enumerate(texts, start=1):
                scores.append(scorer.score(text))
                if control:
                    shuffled.append(scorer.score(shuffled_words(text, seed + n)))
                if on_text:
                    on_text(Path(path).name, n)
        finally:
            scorer.close()
        results.append(_aggregate(Path(path).name, scores, shuffled or None, time.perf_counter() - started))
    return PerplexityReport(collection, len(texts), seed, results)
