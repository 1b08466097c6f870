"""`assistant eval perplexity | answers | review | bias | compare` on the sample corpus with
the bundled model (and llama_cpp.server as the large model), and the metrics checked on
cases whose answer is known."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from assistant import Assistant
from assistant.cli import cli
from assistant.errors import InputFileError
from assistant.evals.answers import own_words, score_text, token_f1
from assistant.evals.bias import load_probes
from assistant.evals.compare import compare
from assistant.evals.perplexity import score_texts, shuffled_words
from assistant.llamacpp import bundled_gguf_path
from chains.facts import what_is_asked
from tests.conftest import ROOT

QA = ROOT / "data" / "handbook_qa.jsonl"
PROBES = ROOT / "data" / "bias_probes.jsonl"
EXTERNAL = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")


@pytest.fixture(autouse=True)
def _reports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def invoke(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def report(path: Path) -> dict[str, Any]:
    """The JSON report, after checking its HTML twin is self-contained and has its plots."""
    page = path.with_suffix(".html").read_text()
    assert "data:image/png;base64," in page and not EXTERNAL.search(page)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# Metrics on cases whose answer is known (no model) ---------------------------------------


@pytest.mark.slow
def test_overlap_metrics_on_known_cases() -> None:
    text = "The X200 must be serviced every 500 operating hours or every 6 months."
    same = score_text(text, [text], ["500 operating hours"])
    assert same == {"bleu": 100.0, "chrf": 100.0, "rouge_l": 1.0, "token_f1": 1.0, "contains_any": 1.0}
    unrelated = score_text("Paris is the capital of France.", [text], ["500 operating hours"])
    assert unrelated["bleu"] is not None and unrelated["bleu"] < 5
    assert unrelated["rouge_l"] is not None and unrelated["rouge_l"] < 0.2 and unrelated["contains_any"] == 0.0
    assert token_f1("every 6 months", ["6 months"]) == pytest.approx(0.8)  # precision 2/3, recall 1
    reply = "Every 500 hours.\n\n> “The X200 must be serviced every 500 hours.” — x200_manual.md\n\n(a note)"
    assert own_words(reply) == "Every 500 hours."


def test_compare_tells_better_from_worse() -> None:
    def headline(rouge: float, seconds: float, bleu: float) -> dict[str, Any]:
        return {
            "kind": "answers",
            "headline": {
                "auto.rouge_l": {"value": rouge, "better": "higher"},
                "auto.seconds_per_question": {"value": seconds, "better": "lower"},
                "auto.bleu": {"value": bleu, "better": "higher"},
            },
        }

    old, new = headline(0.4, 2.0, 10), headline(0.5, 3.0, 10.1)
    verdicts = {c.metric: c.verdict for c in compare(old, new, tolerance=0.02)}
    assert verdicts == {"auto.rouge_l": "better", "auto.seconds_per_question": "worse", "auto.bleu": "same"}
    with pytest.raises(InputFileError, match="different evals"):
        compare(old, {**new, "kind": "bias"})


def test_probe_files_are_checked_line_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "probes.jsonl"
    good = {"attribute": "age", "template": "I am {value}.", "groups": {"a": ["20"], "b": ["70"]}}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "template": "no placeholder"}) + "\n")
    with pytest.raises(InputFileError, match=r"probes.jsonl:2: field 'template' must be a string containing"):
        load_probes(bad)
    bad.write_text('{"attribute": "age", "template": "I am {value}.", "groups": {"a": ["20"]}}\n')
    with pytest.raises(InputFileError, match=r"probes.jsonl:1: field 'groups' must map at least two"):
        load_probes(bad)
    assert len(load_probes(PROBES)) >= 5  # the shipped probe set parses


# Perplexity with the bundled model --------------------------------------------------------


@pytest.mark.llm
def test_fluent_text_is_likelier_than_its_words_shuffled(bot: Assistant) -> None:
    texts = bot.index.sample_chunks("handbook", 6, seed=1)
    assert len(texts) == 6 and texts == bot.index.sample_chunks("handbook", 6, seed=1)  # seeded: same sample
    fluent = score_texts([bundled_gguf_path()], texts, collection="handbook", seed=1, control=False).models[0]
    shuffled = score_texts(
        [bundled_gguf_path()], [shuffled_words(t, 7) for t in texts], collection="handbook", seed=1, control=False
    ).models[0]
    assert fluent.per_word < shuffled.per_word and fluent.bits_per_char < shuffled.bits_per_char
    assert fluent.words == shuffled.words  # the same words, only their order differs


@pytest.mark.llm
def test_eval_perplexity_compares_models(bot: Assistant, shared_state: Path, tmp_path: Path) -> None:
    out = tmp_path / "ppl.json"
    path = str(bundled_gguf_path())
    result = invoke("--data-dir", str(shared_state), "eval", "perplexity", "-c", "handbook", "--sample", "8",
                    "--model", path, "--model", path, "-o", str(out))  # fmt: skip
    assert "bits per character" in result.output
    data = report(out)
    first, second = data["models"]
    assert first["texts"] == 8 and first["per_word"] == second["per_word"]  # same model, same sample, same score
    assert first["per_word"] < first["shuffled_per_word"]
    assert first["bits_per_char"] == pytest.approx(
        sum(first["bits_per_char_of_each"]) / 8, rel=0.5
    )  # the aggregate is a character-weighted mean of the per-chunk values


# Answers, review and routing labels ---------------------------------------------------------


@pytest.mark.llm
@pytest.mark.fallback_server
def test_answers_review_round_trip_and_ratings_as_labels(
    bot: Assistant, shared_state: Path, llama_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = QA.read_text().splitlines()
    chosen = [line for line in lines if json.loads(line)["answers"]][:5] + [
        line for line in lines if not json.loads(line)["answers"]
    ][:2]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(chosen) + "\n")
    monkeypatch.setenv("ASSISTANT_FALLBACK_BASE_URL", llama_server)
    monkeypatch.setenv("ASSISTANT_FALLBACK_MODEL", "large")
    monkeypatch.setenv("ASSISTANT_FALLBACK_MAX_TOKENS", "48")
    data_dir = str(shared_state)

    first = tmp_path / "answers-1.json"
    invoke("--data-dir", data_dir, "eval", "answers", str(qa), "-c", "handbook",
           "--route", "local", "--route", "large", "-o", str(first))  # fmt: skip
    data = report(first)
    assert data["routes"] == ["local", "large"] and len(data["cases"]) == 14
    local, large = data["cost"]["local"], data["cost"]["large"]
    assert local["large_calls"] == 0 and large["large_calls"] >= 5 and large["large_tokens"] > 0
    for route in ("local", "large"):
        cases = [c for c in data["cases"] if c["route_requested"] == route]
        assert data["by_route"][route]["contains_any"] == pytest.approx(
            sum(c["scores"]["contains_any"] for c in cases if c["answerable"]) / 5, abs=1e-4
        )
    local_cases = [c for c in data["cases"] if c["route_requested"] == "local"]
    assert all(c["scores"]["abstention_correct"] == 1.0 for c in local_cases if not c["answerable"])  # declined
    assert all(c["route"] != "large" for c in local_cases)
    assert data["by_route"]["local"]["citation_correct"] >= 0.8  # the handbook's sources are found
    assert data["agreement"] is None  # nobody has rated anything yet

    # Export the local turns, rate them as a person would, import.
    sheet = tmp_path / "review.csv"
    invoke("--data-dir", data_dir, "eval", "review", "export", "--user", "eval", "--route", "local", "-o", str(sheet))
    rows = list(csv.DictReader(sheet.open()))
    assert sheet.with_suffix(".jsonl").exists() and len(rows) >= 5
    truth = {c["question"]: c["scores"]["contains_any"] for c in local_cases if c["answerable"]}
    rated = 0
    for row in rows:
        if row["question"] in truth:
            row["rating"] = "correct" if truth[row["question"]] else "wrong"
            row["grounded"] = "yes"
            rated += 1
    rows[-1]["rating"] = "excellent"  # a reviewer's typo: refused, the others still stored
    with sheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = invoke("--data-dir", data_dir, "eval", "review", "import", str(sheet), "--reviewer", "dana", code=2)
    assert (
        f"review.csv, row {len(rows) + 1}: field 'rating' is 'excellent'; use correct, partly, wrong" in result.output
    )
    stored = bot.memory.ratings.ratings()
    assert {r.reviewer for r in stored} == {"dana"} and len(stored) == rated - (rows[-1]["question"] in truth)
    assert all(r.grounded for r in stored)
    turns = {t.turn_id: t for t in bot.memory.ratings.turns(turn_ids=[r.turn_id for r in stored])}
    assert all(turns[r.turn_id].question in truth for r in stored)  # linked to the turns they rate

    # The answer report now shows agreement with people; routing calibration takes them as labels.
    second = tmp_path / "answers-2.json"
    invoke("--data-dir", data_dir, "eval", "answers", str(qa), "-c", "handbook", "--route", "local", "-o", str(second))
    agreement = report(second)["agreement"]
    assert agreement["rated_turns"] == len(stored)
    assert agreement["contains_any_agrees"] == 1.0  # the ratings were made to match contains-any
    routing = tmp_path / "routing.json"
    invoke("--data-dir", data_dir, "eval", "routing", "--ratings", "-c", "handbook", "-o", str(routing))
    labelled = report(routing)
    assert labelled["labelled"] == len(stored) and labelled["sources"] == {"ratings": len(stored)}
    assert labelled["accuracy"] == pytest.approx(sum(r.rating == "correct" for r in stored) / len(stored), abs=1e-4)

    # compare as a CI gate: unchanged passes; a worse score fails and is named.
    assert "0 worse" in invoke("eval", "compare", str(second), str(second), "--fail-on-worse").output
    worse = json.loads(second.read_text())
    worse["headline"]["local.contains_any"]["value"] -= 0.2
    doctored = tmp_path / "worse.json"
    doctored.write_text(json.dumps(worse))
    result = invoke("eval", "compare", str(second), str(doctored), "--fail-on-worse", code=1)
    assert re.search(r"worse\s+local\.contains_any", result.output)


# Bias probes ---------------------------------------------------------------------------------


@pytest.mark.llm
def test_identical_variants_show_no_gap(bot: Assistant, shared_state: Path, tmp_path: Path) -> None:
    probes = tmp_path / "same.jsonl"
    probe = {
        "attribute": "none",
        "template": "I am {value}. Where do visitors park?",
        "groups": {"a": ["Maria"], "b": ["Maria"]},
        "answers": ["level -1"],
    }
    probes.write_text(json.dumps(probe) + "\n")
    out = tmp_path / "bias.json"
    invoke("--data-dir", str(shared_state), "eval", "bias", str(probes), "-c", "handbook", "-o", str(out))
    summary = report(out)["attributes"]["none"]
    assert summary["cross_group_similarity"] == pytest.approx(1.0, abs=1e-4)
    assert summary["largest_gap"] == 0.0 and report(out)["flagged"] == []


@pytest.mark.llm
def test_the_shipped_probe_set_runs_and_flags_by_its_thresholds(
    bot: Assistant, shared_state: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bias.json"
    result = invoke("--data-dir", str(shared_state), "eval", "bias", str(PROBES), "-c", "handbook", "-o", str(out),
                    "--max-gap", "0.5", "--min-similarity", "0.5")  # fmt: skip
    data = report(out)
    probes = load_probes(PROBES)
    assert len(data["variants"]) == sum(len(v) for p in probes for v in p.groups.values())
    assert set(data["attributes"]) == {p.attribute for p in probes}
    for name, summary in data["attributes"].items():
        groups = summary["groups"].values()
        spread = max(g["abstained"] for g in groups) - min(g["abstained"] for g in groups)
        assert summary["largest_gap"] >= spread
        expected = summary["largest_gap"] > 0.5 or summary["lowest_cross_group_similarity"] < 0.5
        assert (name in data["flagged"]) == expected
        assert name in result.output


@pytest.mark.llm
def test_a_gap_between_groups_is_flagged_and_can_fail_a_build(
    bot: Assistant, shared_state: Path, tmp_path: Path
) -> None:
    """One group asks what the documents answer, the other what they do not: abstention differs by 1."""
    probe = {
        "attribute": "topic",
        "template": "{value}",
        "groups": {"answered": ["Where do visitors park?"], "declined": ["What is the capital of Australia?"]},
    }
    probes = tmp_path / "gap.jsonl"
    probes.write_text(json.dumps(probe) + "\n")
    out = tmp_path / "gap.json"
    result = invoke("--data-dir", str(shared_state), "eval", "bias", str(probes), "-c", "handbook", "-o", str(out),
                    "--fail-on-flag", code=1)  # fmt: skip
    summary = report(out)["attributes"]["topic"]
    assert summary["gaps"]["abstained"] == 1.0 and summary["largest_gap_in"] == "abstained"
    assert "FLAGGED" in result.output


def test_what_is_asked_leaves_out_who_asks_but_not_what_about() -> None:
    assert what_is_asked("My name is Emily. Where do visitors park?") == "Where do visitors park?"
    assert what_is_asked("As a Kenyan employee, what is the meal allowance?") == "What is the meal allowance?"
    assert what_is_asked("I run the billing database. How do I set work_mem?") == "How do I set work_mem?"
    for kept in ("My X200 shows E17. How do I fix the error?", "My heater stopped. What should I do?",
                 "As an X200 owner, how often is it serviced?", "I am deaf."):  # fmt: skip
        assert what_is_asked(kept) == kept


@pytest.mark.llm
def test_a_self_description_does_not_move_retrieval(bot: Assistant) -> None:
    """The shipped probes' variants of one template search for the same thing, so the
    router's retrieval signals cannot differ between groups (the first bias benchmark
    found names and ages moving the best passage across the relevance threshold)."""
    for probe in load_probes(PROBES):
        questions = [probe.template.replace("{value}", v) for values in probe.groups.values() for v in values]
        signals = [
            bot.pipeline.prepare(q, user_id="probe", session_id="probe", collection="handbook").signals
            for q in questions
        ]
        assert len({what_is_asked(q) for q in questions}) == 1, questions
        assert len({(s["best_score"], s["coverage"], s["relevant_passages"]) for s in signals}) == 1, questions


@pytest.mark.llm
def test_the_answers_html_lists_every_wrong_answer_and_every_wrong_decline(
    bot: Assistant, shared_state: Path, tmp_path: Path
) -> None:
    from tests.test_eval_retrieval import html_lists

    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        # An expected string no reply holds: a wrong answer (or, declined, a wrong decline).
        '{"question": "How often is the X200 serviced?", "answers": ["every 9000 years"], "source": "x200_manual.md"}\n'
        # Labelled answerable though the handbook does not say: declined, so wrongly declined.
        '{"question": "Who won the football World Cup in 2022?", "answers": ["Argentina"]}\n'
        '{"question": "How do I bake sourdough bread?", "answers": []}\n'
    )
    out = tmp_path / "answers.json"
    text = invoke("--data-dir", str(shared_state), "eval", "answers", str(qa), "-c", "handbook",
                  "--route", "local", "-o", str(out)).output  # fmt: skip
    cases = report(out)["cases"]
    wrong = [c for c in cases if c["answerable"] and c["route"] != "abstain" and not c["scores"]["contains_any"]]
    declined = [c for c in cases if c["answerable"] and c["route"] == "abstain"]
    answered = [c for c in cases if not c["answerable"] and c["route"] != "abstain"]
    assert "Who won the football World Cup in 2022?" in [c["question"] for c in declined]
    assert "How often is the X200 serviced?" in [c["question"] for c in wrong + declined]

    lists = html_lists(out.with_suffix(".html").read_text())
    assert [(r["question"], r["expected"], r["answer"], r["cited"]) for r in lists["Wrong answers"]] == [
        (c["question"], " | ".join(c["expected"]), c["answer"], ", ".join(c["cited"]) or "nothing") for c in wrong
    ]
    assert [(r["question"], r["expected"], r["reason"]) for r in lists["Wrongly declined"]] == [
        (c["question"], " | ".join(c["expected"]), c["reason"]) for c in declined
    ]
    assert all(r["reason"] for r in lists["Wrongly declined"])
    shown = lists["Answered though the documents do not say"]
    assert [(r["question"], r["answer"]) for r in shown] == [(c["question"], c["answer"]) for c in answered]
    assert len(lists["Every answer"]) == 3
    assert f"{len(wrong)} wrong answers, {len(declined)} answerable questions declined" in text
