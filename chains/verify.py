"""Check a local draft sentence by sentence against the passages it was written from.

A 135M model often states the passage's fact, but as often writes a fluent sentence
from its own world knowledge, or loops. So nothing it writes is shown as a claim
unless the documents back it:

- every number, code, identifier and name in the sentence occurs in the passages
  exactly (or was in the question itself);
- at least `min_support` of the content words it adds to the question are found in
  the passages (stemmed, as the keyword index sees them);
- it is not a repeat of an earlier sentence, does not loop inside itself, and is not
  the model saying the documents do not answer (that is a signal, not a claim).

`SentenceGate` applies the check while tokens arrive, so a stream shows only checked
sentences and generation stops at the first repetition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chains.untrusted import REMOVED
from retrievers.keywords import query_terms, terms_of
from retrievers.passage import Passage
from retrievers.words import STOP_WORDS, sentences

__all__ = ["DECLINED", "Checked", "SentenceGate", "Verified", "Verifier", "exact_tokens"]

DECLINED = re.compile(
    r"\b(?:(?:do|does|did)\s*(?:not|n't)\s+(?:contain|mention|say|provide|cover|include|specify|state)"
    r"|not\s+(?:mentioned|provided|specified|stated|covered|found|available)"
    r"|no\s+(?:information|mention)|cannot\s+(?:find|answer|determine)|can't\s+(?:find|answer|determine)"
    r"|i(?:'m| am)\s+(?:sorry|not sure|unable))",
    re.IGNORECASE,
)
# Numbers (with decimals, separators, a sign or a percent), codes and identifiers
# (X200, E17, work_mem, pg_dump, 40P01, --jobs, sqlite3_open), acronyms (WAL, FTS5).
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,:]\d+)*%?")
_IDENTIFIER = re.compile(
    r"(?<![\w-])(?:--?[A-Za-z][\w-]*|[A-Za-z_]*\d[\w-]*|[A-Za-z]+_[\w.]*|[a-z]+\.[a-z_]\w*|[A-Z]{2,}[A-Za-z0-9]*)"
)
# A capitalised word that does not start its sentence: a name (Canberra, Alice, Oracle).
_NAME = re.compile(r"(?<=[^.!?:\s]\s)[A-Z][a-z]{2,}\b")
_SENTENCE_START_WORDS = frozenset({"I", "The", "A", "An"})
_UNITS = frozenset({"KB", "MB", "GB", "TB", "PB", "KIB", "MIB", "GIB", "TIB", "MS"})  # units, not names
MIN_SUPPORT = 0.7
REPEAT_OVERLAP = 0.8


def exact_tokens(sentence: str) -> list[str]:
    """The numbers, codes, identifiers and names a sentence states: what must be found verbatim."""
    found = [m.group(0).rstrip(".,:") for m in _NUMBER.finditer(sentence)]
    found += [m.group(0).rstrip(".,:-") for m in _IDENTIFIER.finditer(sentence) if m.group(0).upper() not in _UNITS]
    found += [m.group(0) for m in _NAME.finditer(sentence) if m.group(0) not in _SENTENCE_START_WORDS]
    return list(dict.fromkeys(t for t in found if t and t.strip("-+")))


@dataclass(frozen=True)
class Checked:
    sentence: str
    supported: bool
    support: float  # share of the content words it adds found in the passages (1.0 if it adds none)
    missing: tuple[str, ...] = ()  # exact tokens the passages do not hold
    problem: str = ""  # why it is not shown: unsupported, missing, repeated, loops, declines, adds nothing


@dataclass
class Verified:
    """The checked draft: the sentences that may be shown, and what was dropped and why."""

    checked: list[Checked] = field(default_factory=list)

    @property
    def kept(self) -> list[Checked]:
        return [c for c in self.checked if c.supported]

    @property
    def text(self) -> str:
        return " ".join(c.sentence for c in self.kept)

    def signals(self) -> dict[str, float | int | bool | list[str]]:
        """What the check says about the draft; each 'higher is more likely right' except the counts."""
        claims = [c for c in self.checked if c.problem not in ("repeated", "declines")]
        kept = self.kept
        return {
            "sentences": len(self.checked),
            "sentences_kept": len(kept),
            "kept_share": round(len(kept) / len(claims), 4) if claims else 0.0,
            "kept_support": round(min((c.support for c in kept), default=0.0), 4),
            "unbacked_exact": sum(bool(c.missing) for c in self.checked),
            "repeated": sum(c.problem in ("repeated", "loops") for c in self.checked),
            "declined": any(c.problem == "declines" for c in self.checked),
            "extractive": not kept,
            # Why each dropped sentence was dropped, for the reader of a stored turn.
            "dropped": [
                f"{c.problem}: {', '.join(c.missing)}" if c.missing else c.problem
                for c in self.checked
                if not c.supported
            ],
        }


class Verifier:
    """Checks sentences of one draft, in order, against its passages and question."""

    def __init__(self, passages: list[Passage], question: str, *, language: str = "english") -> None:
        self.language = language
        # The marker of a planted line set aside (chains.untrusted) backs nothing.
        corpus = "\n".join(f"{p.title}\n{p.text.replace(REMOVED, ' ')}" for p in passages)
        self._text = corpus.lower()
        self._question = question.lower()
        self._terms = set(query_terms(corpus, language))
        self._asked = set(query_terms(question, language))
        self._seen: list[set[str]] = []

    def check(self, sentence: str) -> Checked:
        sentence = " ".join(sentence.split())
        terms = query_terms(sentence, self.language)
        own = set(terms)
        if self._repeats(own):
            return Checked(sentence, False, 0.0, (), "repeated")
        self._seen.append(own)
        if _loops([t for t in terms_of(sentence, self.language) if t not in STOP_WORDS]):
            return Checked(sentence, False, 0.0, (), "loops")
        if DECLINED.search(sentence):
            return Checked(sentence, False, 0.0, (), "declines")
        missing = tuple(t for t in exact_tokens(sentence) if not self._holds(t))
        added = own - self._asked
        if not added:
            return Checked(sentence, False, 1.0, missing, "adds nothing")
        support = len(added & self._terms) / len(added)
        if missing:
            return Checked(sentence, False, round(support, 4), missing, "missing")
        if support < MIN_SUPPORT:
            return Checked(sentence, False, round(support, 4), (), "unsupported")
        return Checked(sentence, True, round(support, 4))

    def _holds(self, token: str) -> bool:
        """The token occurs in the passages (or the question) as a whole word, case ignored."""
        word = re.escape(token.lower())
        # A number may sit against its unit ("64MB"), but not inside a longer number.
        pattern = re.compile(
            rf"(?<![\d.]){word}(?![\d]|[.,]\d)" if _NUMBER.fullmatch(token) else rf"(?<![\w]){word}(?![\w]|[.,]\d)"
        )
        return bool(pattern.search(self._text) or pattern.search(self._question))

    def _repeats(self, terms: set[str]) -> bool:
        if not terms:
            return False
        return any(len(terms & seen) / len(terms | seen) >= REPEAT_OVERLAP for seen in self._seen if seen)


def _cut_short(sentence: str) -> bool:
    words = sentence.rstrip().split()
    return bool(words) and sentence.rstrip()[-1] not in '.!?)"”' and words[-1].lower() in STOP_WORDS


def _loops(terms: list[str]) -> bool:
    """A run of three terms that comes back within the sentence: the model is looping."""
    grams = [tuple(terms[i : i + 3]) for i in range(len(terms) - 2)]
    return len(grams) != len(set(grams))


class SentenceGate:
    """Takes generated text as it arrives; releases each sentence once complete and checked.

    `stop` turns true once `enough` sentences have passed (the answer is complete: the
    prompt asks for one or two) or at the first repeated or looping sentence: generating
    more is waste. `enough=None` never stops on the count."""

    def __init__(self, verifier: Verifier, *, enough: int | None = None) -> None:
        self.verifier = verifier
        self.verified = Verified()
        self.enough = enough
        self._buffer = ""
        self.stop = False

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        parts = sentences(self._buffer)
        if len(parts) < 2:
            return []
        released: list[str] = []
        for sentence in parts[:-1]:
            released.extend(self._check(sentence))
        # Keep the unfinished last sentence (from where it starts in the buffer).
        start = self._buffer.rfind(parts[-1][: min(len(parts[-1]), 20)])
        self._buffer = self._buffer[start:] if start >= 0 else parts[-1]
        return released

    def close(self) -> list[str]:
        """The rest of the text once generation ended. A last sentence without a full stop counts,
        unless it breaks off on a word like "a" or "the": the answer limit cut it short."""
        rest, self._buffer = self._buffer, ""
        released: list[str] = []
        parts = sentences(rest)
        for number, sentence in enumerate(parts, start=1):
            if number == len(parts) and _cut_short(sentence):
                self.verified.checked.append(Checked(sentence, False, 0.0, (), "unfinished"))
                continue
            released.extend(self._check(sentence))
        return released

    def _check(self, sentence: str) -> list[str]:
        if self.stop:
            return []
        checked = self.verifier.check(sentence)
        self.verified.checked.append(checked)
        if checked.problem in ("repeated", "loops"):
            self.stop = True
        if self.enough is not None and len(self.verified.kept) >= self.enough:
            self.stop = True
        return [checked.sentence] if checked.supported else []
