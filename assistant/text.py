"""Text every store, tokenizer and encoder takes: one rule for documents and memory alike.

Imported by `memory` and `retrievers`, so, like `assistant.errors`, it imports nothing
of the project.
"""

from __future__ import annotations

import re

__all__ = ["storable"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` as every engine can store it: NUL removed (PostgreSQL refuses it in text, and it
    means nothing to a reader), a lone surrogate (not Unicode, no encoding carries it) as U+FFFD."""
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))
