"""`assistant eval routing`: the labelled set run for real (local model in-process, large
model behind llama_cpp.server), its metrics consistent with its own per-question results,
and the operating point written to a settings file that loads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import Assistant, Settings
from assistant.cli import cli
from assistant.errors import InputFileError
from assistant.evals.qa import is_correct, load_qa
from assistant.settings import load_settings
from tests.conftest import HANDBOOK, ROOT

pytestmark = [pytest.mark.llm, pytest.mark.fallback_server]


def test_qa_files_are_checked_line_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "ok?", "answers": ["x"]}\n{"question": "", "answers": []}\n')
    with pytest.raises(InputFileError, match=r"qa.jsonl:2: field 'question' must be a non-empty string"):
        load_qa(bad)
    bad.write_text('{"question": "ok?", "answers": "x"}\n')
    with pytest.raises(InputFileError, match=r"qa.jsonl:1: field 'answers' must be a list"):
        load_qa(bad)
    assert is_correct("Service every  500 Operating hours.", ["500 operating hours"])
    assert not is_correct("every 600 hours", ["500 operating hours", "6 months"])


def test_eval_routing_fits_the_confidence_and_writes_model_and_operating_point(
    llama_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "state"
    bot = Assistant.from_settings(Settings(data_dir=data_dir))
    bot.ingest(HANDBOOK, collection="handbook")
    lines = (ROOT / "data" / "handbook_qa.jsonl").read_text().splitlines()
    answerable = [line for line in lines if json.loads(line)["answers"]][:8]
    unanswerable = [line for line in lines if not json.loads(line)["answers"]][:3]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(answerable + unanswerable) + "\n")
    settings_file = tmp_path / "assistant.toml"
    settings_file.write_text("# team settings\ntop_k = 4\n")
    out = tmp_path / "routing.json"
    model_file = tmp_path / "confidence.json"

    # Turns the large model answered become labels too: escalate two questions first.
    monkeypatch.setenv("ASSISTANT_FALLBACK_BASE_URL", llama_server)
    monkeypatch.setenv("ASSISTANT_FALLBACK_MODEL", "large")
    monkeypatch.setenv("ASSISTANT_FALLBACK_MAX_TOKENS", "48")
    monkeypatch.setenv("ASSISTANT_ANSWER_CONFIDENCE", "1.0")  # nothing is confident enough: all escalate
    escalating = Assistant.from_settings(Settings(data_dir=data_dir))
    for n, question in enumerate(("How often is the X200 serviced?", "How long is the X200 warranty?")):
        reply = escalating.ask(question, user_id="ops", session_id=f"e{n}", collection="handbook")
        assert reply.route == "large" and "local_draft" in reply.signals, reply.reason
    monkeypatch.delenv("ASSISTANT_ANSWER_CONFIDENCE")

    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "eval", "routing", str(qa), "-c", "handbook", "-o", str(out), "--escalations",
         "--fit", "--model-file", str(model_file), "--write-settings", "--settings-file", str(settings_file)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "AUROC" in result.output and "operating point" in result.output and "Risk-coverage" in result.output
    report = json.loads(out.read_text())
    turns = report["turns"]
    assert report["labelled"] == len(turns) == 11 + 2 and report["sources"] == {"qa": 11, "large": 2}
    for turn, line in zip(turns, answerable + unanswerable, strict=False):
        item = json.loads(line)
        assert turn["question"] == item["question"]
        assert turn["correct"] == (bool(item["answers"]) and is_correct(turn["answer"], item["answers"]))
    assert report["accuracy"] == round(sum(t["correct"] for t in turns) / len(turns), 4)
    assert report["fitted"] and report["auroc"]["confidence"] is not None
    assert all(v is None or 0.0 <= v <= 1.0 for v in report["auroc"].values())
    curve = report["curve"]
    assert [p["coverage"] for p in curve] == sorted(p["coverage"] for p in curve) and curve[-1]["coverage"] == 1.0
    assert curve[-1]["accuracy"] == report["accuracy"]  # keeping everything: the overall accuracy

    point = report["operating_point"]
    assert point is not None and 0.0 <= point["decline_confidence"] <= point["answer_confidence"] <= 1.0
    text = settings_file.read_text()
    assert text.startswith("# team settings\ntop_k = 4\n")  # the file's own lines are kept
    monkeypatch.setenv("ASSISTANT_CONFIG", str(settings_file))
    loaded = load_settings()
    assert loaded.answer_confidence == point["answer_confidence"]
    assert loaded.decline_confidence == point["decline_confidence"]
    assert loaded.confidence_model == model_file.resolve() and loaded.top_k == 4
    # The refitted model is the one an assistant built from these settings routes with.
    refitted = Assistant.from_settings(loaded.model_copy(update={"data_dir": data_dir}))
    assert refitted.pipeline.policy.confidence.fitted_on.startswith("13 labelled turns")


def test_retired_threshold_settings_say_what_replaced_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import ConfigurationError

    old_file = tmp_path / "assistant.toml"
    old_file.write_text("min_mean_logprob = -0.9\n")  # a settings file written by an earlier version
    monkeypatch.setenv("ASSISTANT_CONFIG", str(old_file))
    with pytest.raises(ConfigurationError, match=r"'min_mean_logprob': is no longer a setting.*answer_confidence"):
        load_settings()


def test_the_routing_html_lists_every_wrong_reply_and_every_wrong_decline(
    bot: Assistant, shared_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_eval_retrieval import html_lists

    monkeypatch.chdir(tmp_path)
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"question": "How often is the X200 serviced?", "answers": ["500 operating hours", "500 hours"]}\n'
        # An expected string no reply holds: a wrong reply, whatever the model says.
        '{"question": "How long is the X200 warranty?", "answers": ["every 9000 years"]}\n'
        '{"question": "How do I bake sourdough bread?", "answers": []}\n'
    )
    out = tmp_path / "routing.json"
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(shared_state), "eval", "routing", str(qa), "-c", "handbook", "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    turns = report["turns"]
    wrong = [t for t in turns if t["route"] != "abstain" and not t["correct"]]
    assert "How long is the X200 warranty?" in [t["question"] for t in wrong]

    lists = html_lists(out.with_suffix(".html").read_text())
    expected = {True: lambda t: " | ".join(t["expected"]), False: lambda t: "(the documents do not say)"}
    assert [(r["question"], r["expected"], r["reply"]) for r in lists["Wrong replies"]] == [
        (t["question"], expected[t["answerable"]](t), t["answer"]) for t in wrong
    ]
    declined = [turns[i] for i in report["wrongly_declined"]]
    assert all(t["answerable"] for t in declined)
    assert [(r["question"], r["reply"]) for r in lists["Wrongly declined"]] == [
        (t["question"], t["answer"]) for t in declined
    ]
    assert [r["question"] for r in lists["Every reply"]] == [t["question"] for t in turns]
    assert f"{len(wrong)} wrong replies, {len(declined)} answerable questions declined" in result.output
