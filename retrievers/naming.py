"""Collection names: one rule shared by settings, the store and the CLI.

Chroma accepts 3 to 512 characters from [a-zA-Z0-9._-], starting and ending with a
letter or digit; we check it up front so the message names the value and the fix.
Imports nothing from the project but the errors.
"""

from __future__ import annotations

import re

from assistant.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


def check_collection_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigurationError(
            "collection",
            f"{name!r} is not a valid collection name",
            "Use 3 to 512 letters, digits, '.', '_' or '-', starting and ending with a letter or digit.",
        )
    return name
