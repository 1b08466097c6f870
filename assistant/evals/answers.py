"""`assistant eval answers`: the assistant's answers scored against reference answers.

Every question of a QA file is asked as a real turn (fresh session each, user
"eval", stored in memory so the turns can be exported for human review) once per
requested route; what a question says about its asker is forgotten after it.
Scores come from established implementations: BLEU and chrF from sacrebleu,
ROUGE-L from Google's rouge-score, nDCG@10 / MRR / P@1 of the cited sources from
ir-measures (TREC's trec_eval). Ours are the simple ones: token F1 (SQuAD's
definition), contains-any (an expected string occurs in the answer), citation
correctness (the expected source is among those cited) and abstention correctness
(declined exactly when the documents do not answer). Each route's cost: local
tokens, large-model calls and tokens, seconds.

Scores are of the answer as the user sees it, quoted evidence included; with
`own_words` the quoted lines are removed first, so only the model's words count.
"""

from __future__ import annotations

import re
import statistics
import string
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from assistant.evals.confidence import auroc, own_words, risk_coverage, unbacked_claims
from assistant.evals.qa import QAItem, is_correct

if TYPE_CHECKING:
    from assistant.core import Assistant
    from memory.ratings import ReviewTurn, StoredRating

__all__ = [
    "AnswerCase",
    "AnswersReport",
    "agreement",
    "evaluate_answers",
    "own_words",
    "same_source",
    "score_text",
    "token_f1",
]

OVERLAP_METRICS = ("bleu", "chrf", "rouge_l", "token_f1", "contains_any")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_HUMAN = {"correct": 1.0, "partly": 0.5, "wrong": 0.0}


@dataclass
class AnswerCase:
    question: str
    kind: str
    route_requested: str
    answerable: bool
    references: list[str]
    expected_source: str | None
    answer: str
    route: str
    reason: str
    model: str
    cited: list[str]
    scores: dict[str, float | None]
    prompt_tokens: int
    completion_tokens: int
    large_calls: int
    large_tokens: int
    seconds: float
    signals: dict[str, Any] = field(default_factory=dict)
    turn_id: int | None = None
    expected: list[str] = field(default_factory=list)  # the QA file's answers: any one makes it right


@dataclass
class AnswersReport:
    collection: str
    qa_file: str
    routes: list[str]
    questions: int
    answerable: int
    own_words: bool
    by_route: dict[str, dict[str, Any]]
    by_kind: dict[str, dict[str, dict[str, float | None]]]
    cost: dict[str, dict[str, float]]
    agreement: dict[str, Any] | None
    cases: list[AnswerCase] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = "answers"
        data["headline"] = {
            f"{route}.{metric}": {"value": value, "better": "lower" if metric == "unbacked_claims" else "higher"}
            for route, values in self.by_route.items()
            for metric, value in values.items()
            if isinstance(value, int | float) and metric != "n"
        } | {
            f"{route}.{metric}": {"value": value, "better": "lower"}
            for route, values in self.cost.items()
            for metric, value in values.items()
        }
        return data


def _tokens(text: str) -> list[str]:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return _ARTICLES.sub(" ", text).split()


def token_f1(answer: str, references: Iterable[str]) -> float:
    """SQuAD's token F1: the best over the references of the bag-of-words overlap F1."""
    said = _tokens(answer)
    best = 0.0
    for reference in references:
        wanted = _tokens(reference)
        common = sum((Counter(said) & Counter(wanted)).values())
        if common:
            precision, recall = common / len(said), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def same_source(found: str, expected: str) -> bool:
    """A cited file is the expected one (QA files may name it without its folder)."""
    return found == expected or found.endswith("/" + expected)


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def score_text(answer: str, references: list[str], answers: Iterable[str]) -> dict[str, float | None]:
    """BLEU, chrF (sacrebleu), ROUGE-L F (rouge-score), token F1 and contains-any of one answer."""
    import sacrebleu

    scorer = _rouge()
    return {
        "bleu": round(sacrebleu.sentence_bleu(answer, references).score, 2),
        "chrf": round(sacrebleu.sentence_chrf(answer, references).score, 2),
        "rouge_l": round(max(scorer.score(r, answer)["rougeL"].fmeasure for r in references), 4),
        "token_f1": round(token_f1(answer, references), 4),
        "contains_any": 1.0 if is_correct(answer, tuple(answers)) else 0.0,
    }


def _ask(bot: Assistant, item: QAItem, collection: str, route: str, run: str, n: int, words_only: bool) -> AnswerCase:
    session = f"eval-answers-{run}-{route}-{n}"
    started = time.perf_counter()
    reply = bot.ask(item.question, user_id="eval", session_id=session, collection=collection, route=route)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    bot.forget("eval")  # what one question said about its asker must not reach the next
    calls = [e for e in bot.escalations(user_id="eval", session_id=session) if e.status == "ok"]
    text = own_words(reply.answer) if words_only else reply.answer
    declined = reply.route == "abstain"
    cited = list(dict.fromkeys(s.file for s in reply.sources))
    scores: dict[str, float | None] = (
        score_text(text, item.references, item.answers) if item.answers else dict.fromkeys(OVERLAP_METRICS)
    )
    scores["citation_correct"] = (
        float(any(same_source(f, item.source) for f in cited)) if item.answers and item.source else None
    )
    scores["abstention_correct"] = float(declined != bool(item.answers))
    words = own_words(reply.answer) if not declined else ""
    scores["reply_right"] = float(not declined and bool(item.answers) and is_correct(reply.answer, item.answers))
    scores["own_words_right"] = float(bool(words) and bool(item.answers) and is_correct(words, item.answers))
    scores["confidence"] = 0.0 if declined else float(reply.signals.get("confidence") or 0.0)
    scores["confident"] = float(not declined and not reply.low_confidence)
    cited_text = bot.chunk_texts(collection, [s.chunk_id for s in reply.sources]) if words else []
    unbacked = unbacked_claims(words, cited_text) if words and reply.route == "local" else []
    scores["unbacked_claim"] = float(bool(unbacked))
    turns = bot.turns(user_id="eval", session_id=session)
    return AnswerCase(
        question=item.question,
        kind=item.kind or ("answerable" if item.answers else "unanswerable"),
        route_requested=route,
        answerable=bool(item.answers),
        references=item.references,
        expected_source=item.source,
        answer=reply.answer,
        route=reply.route,
        reason=reply.reason,
        model=reply.model,
        cited=cited,
        scores=scores,
        prompt_tokens=int(reply.usage.get("prompt_tokens", 0)),
        completion_tokens=int(reply.usage.get("completion_tokens", 0)),
        large_calls=len(calls),
        large_tokens=sum(e.prompt_tokens + e.completion_tokens for e in calls),
        seconds=round(seconds, 3),
        signals=dict(reply.signals),
        turn_id=turns[-1].turn_id if turns else None,
        expected=list(item.answers),
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 4) if present else None


def _corpus(cases: list[AnswerCase], words_only: bool) -> dict[str, float | None]:
    """Corpus-level BLEU and chrF (sacrebleu), over the answerable questions."""
    import sacrebleu

    scored = [c for c in cases if c.answerable]
    if not scored:
        return {"corpus_bleu": None, "corpus_chrf": None}
    hypotheses = [own_words(c.answer) if words_only else c.answer for c in scored]
    depth = max(len(c.references) for c in scored)
    streams = [[c.references[i] if i < len(c.references) else None for c in scored] for i in range(depth)]
    return {
        "corpus_bleu": round(sacrebleu.corpus_bleu(hypotheses, streams).score, 2),  # type: ignore[arg-type]
        "corpus_chrf": round(sacrebleu.corpus_chrf(hypotheses, streams).score, 2),  # type: ignore[arg-type]
    }


def _ranking(cases: list[AnswerCase]) -> dict[str, float | None]:
    """nDCG@10, MRR and P@1 of the cited sources (ir-measures), over questions with a source."""
    import ir_measures
    from ir_measures import RR, P, nDCG

    qrels, run = {}, {}
    for n, case in enumerate(cases):
        if case.answerable and case.expected_source:
            qid = f"q{n}"
            qrels[qid] = {case.expected_source: 1}
            run[qid] = {
                (case.expected_source if same_source(f, case.expected_source) else f): float(len(case.cited) - rank)
                for rank, f in enumerate(case.cited)
            }
    if not qrels:
        return {"ndcg@10": None, "mrr": None, "p@1": None}
    values = ir_measures.calc_aggregate([nDCG @ 10, RR, P @ 1], qrels, run)
    return {
        "ndcg@10": round(float(values[nDCG @ 10]), 4),
        "mrr": round(float(values[RR]), 4),
        "p@1": round(float(values[P @ 1]), 4),
    }


def _summary(cases: list[AnswerCase], words_only: bool) -> dict[str, Any]:
    answerable = [c for c in cases if c.answerable]
    values: dict[str, Any] = {"n": len(cases)}
    for metric in (*OVERLAP_METRICS, "citation_correct"):
        values[metric] = _mean(c.scores.get(metric) for c in answerable)
    values["abstention_correct"] = _mean(c.scores["abstention_correct"] for c in cases)
    values["escalated"] = _mean(float(c.route == "large") for c in cases)
    values["declined"] = _mean(float(c.route == "abstain") for c in cases)
    return values | _trust(cases) | _corpus(cases, words_only) | _ranking(cases)


def _trust(cases: list[AnswerCase]) -> dict[str, Any]:
    """The whole reply against the model's own words; the confidence as the field measures it."""
    answerable = [c for c in cases if c.answerable]
    shown = [c for c in cases if c.route != "abstain"]
    confident = [c for c in shown if c.scores.get("confident")]
    labels = [bool(c.scores.get("reply_right")) for c in cases]
    scores = [float(c.scores.get("confidence") or 0.0) for c in cases]
    return {
        "reply_right": _mean(c.scores.get("reply_right") for c in answerable),
        "own_words_right": _mean(c.scores.get("own_words_right") for c in answerable),
        "confident_right": _mean(c.scores.get("reply_right") for c in confident),
        "confident_share": round(len(confident) / len(cases), 4) if cases else None,
        "unbacked_claims": _mean(c.scores.get("unbacked_claim") for c in shown),
        "confidence_auroc": auroc(labels, scores),
        "risk_coverage": [asdict(p) for p in risk_coverage(labels, scores)],
    }


def _cost(cases: list[AnswerCase]) -> dict[str, float]:
    n = max(1, len(cases))
    return {
        "seconds_per_question": round(sum(c.seconds for c in cases) / n, 3),
        "local_tokens_per_question": round(sum(c.prompt_tokens + c.completion_tokens for c in cases) / n, 1),
        "large_calls": sum(c.large_calls for c in cases),
        "large_tokens": sum(c.large_tokens for c in cases),
    }


def agreement(
    turns: list[ReviewTurn], ratings: list[StoredRating], items: list[QAItem], *, words_only: bool = False
) -> dict[str, Any] | None:
    """How the automatic scores agree with people, on rated turns whose question is in the QA file.

    People's ratings become numbers (correct 1, partly 0.5, wrong 0); each metric's
    Spearman correlation with them is reported, and how often contains-any and a
    "correct" rating agree (with Cohen's kappa, which discounts chance agreement).
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    by_question = {" ".join(i.question.lower().split()): i for i in items if i.answers}
    turn_of = {t.turn_id: t for t in turns}
    human, automatic = [], []
    for rating in ratings:
        turn = turn_of.get(rating.turn_id)
        item = by_question.get(" ".join(turn.question.lower().split())) if turn else None
        if turn is None or item is None:
            continue
        text = own_words(turn.answer) if words_only else turn.answer
        human.append(_HUMAN[rating.rating])
        automatic.append(score_text(text, item.references, item.answers))
    if len(human) < 2:
        return None
    result: dict[str, Any] = {"rated_turns": len(human), "spearman": {}}
    for metric in OVERLAP_METRICS:
        scores = [float(a[metric] or 0.0) for a in automatic]
        rho = spearmanr(scores, human).statistic if len(set(scores)) > 1 and len(set(human)) > 1 else None
        result["spearman"][metric] = None if rho is None else round(float(rho), 3)
    said_correct = [int(a["contains_any"] == 1.0) for a in automatic]
    rated_correct = [int(h == 1.0) for h in human]
    result["contains_any_agrees"] = round(
        statistics.fmean(a == b for a, b in zip(said_correct, rated_correct, strict=True)), 3
    )
    both_vary = len(set(said_correct)) > 1 or len(set(rated_correct)) > 1
    result["cohen_kappa"] = round(float(cohen_kappa_score(said_correct, rated_correct)), 3) if both_vary else None
    return result


def evaluate_answers(
    bot: Assistant,
    items: list[QAItem],
    collection: str,
    *,
    qa_file: str,
    routes: list[str],
    words_only: bool = False,
    on_case: Callable[[str, int], None] | None = None,
) -> AnswersReport:
    run = uuid.uuid4().hex[:8]
    cases: list[AnswerCase] = []
    for route in routes:
        for n, item in enumerate(items, start=1):
            cases.append(_ask(bot, item, collection, route, run, n, words_only))
            if on_case:
                on_case(route, n)
    by_route = {r: _summary([c for c in cases if c.route_requested == r], words_only) for r in routes}
    kinds = sorted({c.kind for c in cases})
    by_kind = {
        kind: {
            r: {
                metric: _mean(c.scores.get(metric) for c in cases if c.kind == kind and c.route_requested == r)
                for metric in ("contains_any", "rouge_l", "abstention_correct")
            }
            for r in routes
        }
        for kind in kinds
    }
    ratings = bot.ratings()
    people = (
        agreement(bot.turns(turn_ids=[r.turn_id for r in ratings]), ratings, items, words_only=words_only)
        if ratings
        else None
    )
    return AnswersReport(
        collection=collection,
        qa_file=qa_file,
        routes=routes,
        questions=len(items),
        answerable=sum(bool(i.answers) for i in items),
        own_words=words_only,
        by_route=by_route,
        by_kind=by_kind,
        cost={r: _cost([c for c in cases if c.route_requested == r]) for r in routes},
        agreement=people,
        cases=cases,
    )
