"""The optional parts of the install, and the one check that names the extra a feature needs.

A plain `pip install assistant` gives the library and the CLI for documents, questions
and conversations; `[server]` adds the HTTP API and `[eval]` the metrics and reports.
`EXTRAS` mirrors `[project.optional-dependencies]` in pyproject.toml by import name.
This module imports nothing from the project and none of the modules it checks.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtraError", "missing_modules", "require_extra"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "server": ("fastapi", "uvicorn", "python_multipart", "sse_starlette"),
    "eval": ("sklearn", "sacrebleu", "rouge_score", "ir_measures", "matplotlib"),
}


class MissingExtraError(ImportError):
    """A feature was used whose extra is not installed; the message says what to install."""

    def __init__(self, feature: str, extra: str, modules: list[str]) -> None:
        self.feature = feature
        self.extra = extra
        self.modules = modules
        super().__init__(
            f"{feature} needs the {extra} extra: pip install 'assistant[{extra}]' (cannot import {', '.join(modules)})"
        )


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here; nothing is imported to find out."""
    gone = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a finder refused it, or a half-removed package
            found = False
        if not found:
            gone.append(module)
    return gone


def require_extra(extra: str, feature: str) -> None:
    """Raise MissingExtraError naming `extra` when any of its modules is missing.

    `feature` is what the user asked for, as they wrote it: "`assistant serve`"."""
    gone = missing_modules(extra)
    if gone:
        raise MissingExtraError(feature, extra, gone)
