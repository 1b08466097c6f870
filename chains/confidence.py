"""One calibrated probability that the answer shown is right, from every signal a turn has.

Two logistic models over the same label ("the reply shown for this question was
right"; any reply to a question the documents do not answer counts as wrong):

- `before_draft` reads retrieval alone (scores, coverage of the question's words,
  identifiers known, keyword/meaning agreement, the best evidence sentence), so a
  question the documents do not cover is declined before the local model runs;
- `after_draft` adds what the draft shows (token log-probabilities, the share of its
  sentences the passages back, how much of it is the evidence's own words, whether
  it declined or looped).

Inference is a dot product here; fitting needs scikit-learn and lives in
`assistant.evals.confidence`. A model is plain JSON: the bundled default
(`confidence.json` beside this module, fitted on the project's benchmark sets over
more than one corpus), or one refitted for a collection (`assistant eval routing --fit`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigurationError

__all__ = [
    "AFTER_DRAFT",
    "BEFORE_DRAFT",
    "BUNDLED_MODEL",
    "ConfidenceModel",
    "LogisticModel",
    "feature_values",
]

BUNDLED_MODEL = Path(__file__).with_name("confidence.json")

# Retrieval signals, read before any draft.
BEFORE_DRAFT: tuple[str, ...] = (
    "best_score",
    "score_gap",
    "coverage",
    "coverage_top",
    "identifiers_known",
    "names_identifiers",
    "agreement",
    "fused",
    "evidence_score",
    "evidence_overlap",
)
# Plus what the local draft shows.
AFTER_DRAFT: tuple[str, ...] = (
    *BEFORE_DRAFT,
    "mean_logprob",
    "min_logprob",
    "kept_share",
    "kept_support",
    "answer_evidence_overlap",
    "extractive",
    "declined",
    "repeated",
    "unbacked_exact",
)
# Readable names for reasons.
DESCRIPTIONS = {
    "best_score": "similarity of the best passage",
    "score_gap": "lead of the best passage",
    "coverage": "share of the question's words in the best passages",
    "coverage_top": "share of the question's words in the best passage",
    "identifiers_known": "share of the names it asks about found in the documents",
    "names_identifiers": "whether it names a code or identifier",
    "agreement": "agreement of keyword and meaning search",
    "fused": "fused retrieval score",
    "evidence_score": "match of the best evidence sentence",
    "evidence_overlap": "share of the question's words in the best evidence sentence",
    "mean_logprob": "the local model's token confidence",
    "min_logprob": "the local model's least sure token",
    "kept_share": "share of the draft's sentences the passages back",
    "kept_support": "support of the backed sentences",
    "answer_evidence_overlap": "overlap of the answer with the quoted evidence",
    "extractive": "no sentence of the draft was backed (evidence shown instead)",
    "declined": "the local model said the documents do not answer",
    "repeated": "the draft repeated itself",
    "unbacked_exact": "numbers or names the passages do not hold",
}
_NEUTRAL = {"identifiers_known": 1.0, "score_gap": 0.1}


def feature_values(signals: Mapping[str, Any], names: Sequence[str]) -> list[float | None]:
    """The signals as numbers (booleans as 0/1; None when missing)."""
    values: list[float | None] = []
    for name in names:
        value = signals.get(name)
        if name == "names_identifiers":
            value = signals.get("identifiers_known") is not None
        if value is None and name in _NEUTRAL:
            value = _NEUTRAL[name]
        values.append(None if value is None else float(value))
    return values


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    fill: tuple[float, ...]  # what a missing value counts as (its mean in the fitting data)
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def _standardised(self, signals: Mapping[str, Any]) -> list[float]:
        raw = feature_values(signals, self.features)
        return [
            ((f if f is not None and math.isfinite(f) else fill) - m) / (s or 1.0)
            for f, fill, m, s in zip(raw, self.fill, self.mean, self.scale, strict=True)
        ]

    def probability(self, signals: Mapping[str, Any]) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coef, self._standardised(signals), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def weightiest(self, signals: Mapping[str, Any]) -> tuple[str, float]:
        """The signal that moved this probability most, and its contribution (log-odds; + raises it)."""
        standard = self._standardised(signals)
        contributions = [(c * x, n) for c, x, n in zip(self.coef, standard, self.features, strict=True)]
        value, name = max(contributions, key=lambda item: abs(item[0]))
        return name, value


@dataclass(frozen=True)
class ConfidenceModel:
    before_draft: LogisticModel
    after_draft: LogisticModel
    fitted_on: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def before(self, signals: Mapping[str, Any]) -> float:
        return round(self.before_draft.probability(signals), 4)

    def after(self, signals: Mapping[str, Any]) -> float:
        return round(self.after_draft.probability(signals), 4)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "confidence model") -> ConfidenceModel:
        try:
            stages = {}
            for stage in ("before_draft", "after_draft"):
                raw = data[stage]
                model = LogisticModel(
                    tuple(raw["features"]),
                    tuple(float(v) for v in raw["fill"]),
                    tuple(float(v) for v in raw["mean"]),
                    tuple(float(v) for v in raw["scale"]),
                    tuple(float(v) for v in raw["coef"]),
                    float(raw["intercept"]),
                )
                if not all(
                    len(getattr(model, part)) == len(model.features) for part in ("fill", "mean", "scale", "coef")
                ):
                    raise ValueError(f"{stage}: every list must have one value per feature")
                unknown = set(model.features) - set(AFTER_DRAFT)
                if unknown:
                    raise ValueError(f"{stage}: unknown features {sorted(unknown)}")
                stages[stage] = model
            return cls(
                stages["before_draft"],
                stages["after_draft"],
                str(data.get("fitted_on", "")),
                dict(data.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                where, f"is not a confidence model ({exc})", "Refit it with `assistant eval routing --fit`."
            ) from None

    @classmethod
    def load(cls, path: Path | None = None) -> ConfidenceModel:
        """The model in `path`, or the bundled default."""
        target = path or BUNDLED_MODEL
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError(
                str(target),
                f"cannot be read as a confidence model ({exc})",
                "Point confidence_model at a file written by `assistant eval routing --fit`, or unset it.",
            ) from None
        return cls.from_dict(data, str(target))
