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
from assistant.evals.routing import OFF, SETTING_OF_SIGNAL, OperatingPoint, settings_for
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


def test_eval_routing_reports_consistent_metrics_and_writes_the_operating_point(
    llama_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "state"
    bot = Assistant.from_settings(Settings(data_dir=data_dir))
    bot.ingest(HANDBOOK, collection="handbook")
    lines = (ROOT / "data" / "handbook_qa.jsonl").read_text().splitlines()
    answerable = [line for line in lines if json.loads(line)["answers"]][:8]
    unanswerable = [line for line in lines if not json.loads(line)["answers"]][:1]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(answerable + unanswerable) + "\n")
    monkeypatch.setenv("ASSISTANT_FALLBACK_BASE_URL", llama_server)
    monkeypatch.setenv("ASSISTANT_FALLBACK_MODEL", "large")
    monkeypatch.setenv("ASSISTANT_FALLBACK_MAX_TOKENS", "48")
    settings_file = tmp_path / "assistant.toml"
    settings_file.write_text("# team settings\ntop_k = 4\n")
    out = tmp_path / "routing.json"

    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "eval", "routing", str(qa), "-c", "handbook", "-o", str(out),
         "--write-settings", "--settings-file", str(settings_file)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "AUROC" in result.output and "operating point" in result.output
    report = json.loads(out.read_text())
    cases = report["cases"]
    assert (report["questions"], report["skipped_unanswerable"]) == (8, 1)
    assert report["local_accuracy"] == round(sum(c["local_correct"] for c in cases) / 8, 4)
    assert report["large_accuracy"] == round(sum(c["large_correct"] for c in cases) / 8, 4)
    for case in cases:
        assert case["local_correct"] == is_correct(case["local_answer"], case["answers"])
    assert set(report["auroc"]) >= {"mean_logprob", "min_logprob", "support", "best_score", "score_gap"}
    assert all(v is None or 0.0 <= v <= 1.0 for v in report["auroc"].values())
    for rows in report["tables"].values():
        rates = [r["escalation_rate"] for r in rows]
        assert rates == sorted(rates)  # a higher threshold never escalates less
        never_escalated = rows[0]  # threshold -inf: only the fixed rules escalate
        fixed = [c["fixed_escalation"] for c in cases]
        assert never_escalated["escalation_rate"] == round(sum(fixed) / 8, 4)
        everything = rows[-1]  # threshold +inf: everything escalates
        assert everything["escalation_rate"] == 1.0 and everything["accuracy"] == report["large_accuracy"]

    point = report["operating_point"]
    assert point is not None and point["setting"] == SETTING_OF_SIGNAL[point["signal"]]
    expected = settings_for(OperatingPoint(**{**point, "threshold": float(point["threshold"])}))
    assert set(expected) == set(OFF)  # the chosen threshold, the other varied checks off
    text = settings_file.read_text()
    assert text.startswith("# team settings\ntop_k = 4\n")  # the file's own lines are kept
    monkeypatch.setenv("ASSISTANT_CONFIG", str(settings_file))
    loaded = load_settings()
    assert {key: getattr(loaded, key) for key in expected} == expected
    assert loaded.top_k == 4
