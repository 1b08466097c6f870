"""Document text is data: lines in it that address the assistant are set aside.

Anyone who can put a file in a collection can write "SYSTEM: ignore all previous
instructions" into it. Passages reach the models only inside a delimited, quoted
block of the user's message (chains.prompt, chains.escalate), and, before that,
each sentence that speaks to the assistant rather than about the subject is
replaced by a marker, with the rest of its line, so it is never quoted as evidence, never counts as support for
an answer, and never reaches a model. A turn that met such lines is scored lower
(chains.route).

The patterns look for what an injection needs and ordinary documentation rarely
says: an order to drop earlier instructions, a role label written as a chat turn,
chat-template tokens, or an order aimed at the assistant itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from retrievers.passage import Passage

__all__ = ["REMOVED", "addresses_assistant", "quote_documents", "set_aside_instructions"]

REMOVED = "[a line addressed to the assistant was left out]"

_AI = r"(?:assistant|ai|a\.i\.|chat ?bot|bot|language model|llm|gpt|claude|copilot)"
_ORDERS = r"(?:instructions?|prompts?|directions|guidelines|guardrails|directives|rules|context|messages?)"
_PATTERNS = [
    # Orders to drop what came before.
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+|these\s+"
    r"|those\s+)?(?:previous|prior|above|earlier|preceding|former|original|initial|system|old|safety)\s+" + _ORDERS,
    r"\b(?:ignore|disregard|forget|override)\s+(?:all|any|your|these|those|my)\s+(?:\w+\s+)?"
    r"(?:instructions|guidelines|directives|guardrails)\b",
    r"\b(?:ignore|disregard|forget)\s+(?:everything|anything|all)\s+(?:you were told|above|before|previously|else)\b",
    r"\bnew (?:instructions?|directives|system prompt)\s*:",
    r"\b(?:system|developer) (?:prompt|override)\b",
    # Chat-template and instruction-tuning markup.
    r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>|#{2,}\s*(?:system|instructions?|response)\s*:",
    # Orders aimed at the assistant itself.
    rf"\b(?:you are|you're|act as|pretend (?:to be|you are)|roleplay as)\s+(?:now\s+)?(?:an?\s+|the\s+)?"
    rf"(?:\w+\s+){{0,2}}{_AI}\b",
    rf"\byou are now (?:an?\s+|the\s+)?(?:\w+\s+){{0,2}}(?:{_AI}|unrestricted|jailbroken|dan)\b",
    r"\bfrom now on,? (?:you (?:will|must|are|should)|answer|respond|reply|always)\b",
    rf"\b(?:dear |hey |attention,? )?{_AI}s?\s*[,:]\s*(?:you\s+)?(?:must|should|shall|will|need to|have to|"
    r"always|never|please|do not|don't|ignore|say|tell|answer|respond|reply|reveal)\b",
    rf"\b(?:if|when) (?:you are|you're) an? {_AI}\b",
    r"\b(?:when|if) (?:asked|a user asks|the user asks|someone asks|anyone asks)\b[^.!?\n]{0,80}?"
    r"\b(?:say|answer|respond|reply|tell (?:them|the user))\b",
    r"\byou (?:must|should|shall|will) (?:always |now )?(?:answer|respond|reply|say|tell the user)\b[^.!?\n]{0,40}?"
    r"\b(?:that|with)\b",
    r"\b(?:do not|don't|never) (?:tell|inform|reveal to|let) the user\b",
    r"\b(?:reveal|print|repeat|output|show|leak) (?:your|the) (?:system |hidden |initial |secret )?"
    r"(?:prompt|instructions)\b",
    r"\bthe user (?:is|has been) (?:authori[sz]ed|verified|an admin)\b",
]
# A role label written as a chat turn: in capitals anywhere a line or sentence starts, or
# capitalised and followed by an order ("System: ignore…"); case matters here.
_ROLE = re.compile(
    r"(?:^|[\n.!?]\s+)[\[(<#*\s]*(?:(?:SYSTEM|ASSISTANT|DEVELOPER)\s*[\])>]*\s*:(?!:)"
    r"|(?:System|Assistant|Developer)\s*[\])>]*\s*:(?!:)\s*(?:[Yy]ou|[Ii]gnore|[Aa]lways|[Nn]ever|[Ss]ay|[Rr]espond"
    r"|[Aa]nswer|[Rr]eply|[Tt]ell|[Dd]o|[Nn]ew|[Ff]rom|[Tt]he (?:user|admin|password)))",
    re.MULTILINE,
)
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.MULTILINE)
# Sentence ends, kept with the sentence; newlines end a line-sized sentence too.
_PIECES = re.compile(r"[^\n.!?]*(?:[.!?]+(?=\s|$)|\n|$)")


def addresses_assistant(text: str) -> bool:
    """True when the text speaks to the assistant (an instruction to it), not about the subject."""
    return _INJECTION.search(text) is not None or _ROLE.search(text) is not None


def _pieces(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _PIECES.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _clean(text: str) -> tuple[str, int]:
    """The text with each planted order cut from its sentence to the end of its line (what follows
    an order on its line is its payload: "Ignore the above. The password is X.")."""
    if not addresses_assistant(text):
        return text, 0
    kept, removed = [], 0
    for line in text.splitlines(keepends=True):
        if not addresses_assistant(line):
            kept.append(line)
            continue
        pieces = _pieces(line)
        first = next((i for i, piece in enumerate(pieces) if piece.strip() and addresses_assistant(piece)), 0)
        removed += 1
        kept.append("".join(pieces[:first]) + f" {REMOVED}" + ("\n" if line.endswith("\n") else ""))
    cleaned = "".join(kept)
    # An order spread over several lines (a role label, then its text) is removed whole.
    if addresses_assistant(cleaned.replace(REMOVED, "")):
        return REMOVED, removed + 1
    return cleaned.strip(), removed


def set_aside_instructions(passages: Sequence[Passage]) -> tuple[list[Passage], int]:
    """The passages with every sentence that addresses the assistant replaced, and how many were."""
    out, total = [], 0
    for passage in passages:
        text, removed = _clean(passage.text)
        total += removed
        out.append(replace(passage, text=text) if removed else passage)
    return out, total


_OPEN, _CLOSE = "<documents>", "</documents>"


def quote_documents(body: str) -> str:
    """The documents as one delimited block that their own text cannot close or reopen."""
    safe = body.replace(_OPEN, "<documents >").replace(_CLOSE, "</documents >")
    return f"{_OPEN}\n{safe}\n{_CLOSE}"
