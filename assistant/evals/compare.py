"""`assistant eval compare`: the headline metrics of two reports of one eval, side by side.

Every report carries `headline`: each metric with its value and whether higher or
lower is better, so the comparison needs no knowledge of the eval that wrote it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import InputFileError

__all__ = ["Change", "compare", "load_report"]


@dataclass(frozen=True)
class Change:
    metric: str
    old: float | None
    new: float | None
    verdict: str  # "better", "worse", "same", "new" (only in NEW) or "gone" (only in OLD)


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(str(path), f"is not a readable JSON report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("headline"), dict):
        raise InputFileError(str(path), "has no 'headline' metrics: pass a report written by `assistant eval`")
    return data


def _number(entry: Any) -> float | None:
    value = entry.get("value") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def compare(old: dict[str, Any], new: dict[str, Any], *, tolerance: float = 0.0) -> list[Change]:
    """One Change per headline metric; a relative change within `tolerance` is "same"."""
    if old.get("kind") != new.get("kind"):
        raise InputFileError(
            "reports", f"are of different evals ({old.get('kind')} and {new.get('kind')}); compare like with like"
        )
    changes = []
    for metric in sorted(set(old["headline"]) | set(new["headline"])):
        before, after = old["headline"].get(metric), new["headline"].get(metric)
        a, b = _number(before), _number(after)
        if a is None or b is None:
            verdict = "new" if a is None and b is not None else "gone" if b is None and a is not None else "same"
            changes.append(Change(metric, a, b, verdict))
            continue
        higher = (after or before)["better"] == "higher"
        verdict = "same" if abs(b - a) <= tolerance * max(abs(a), 1e-12) else "better" if (b > a) == higher else "worse"
        changes.append(Change(metric, a, b, verdict))
    return changes
