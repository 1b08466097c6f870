"""`assistant eval retrieval` on the sample corpus: a regression floor for search and abstention,
a report consistent with its own per-question results, and calibrated thresholds that load back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import Assistant
from assistant.cli import cli
from assistant.evals.qa import load_qa
from assistant.settings import load_settings
from tests.conftest import ROOT

QA = ROOT / "data" / "handbook_qa.jsonl"
EXTERNAL = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")  # anything a page would fetch

# The floor the sample corpus must keep (measured: see the README). A change that lowers
# any of these has made retrieval or abstention worse.
FLOOR = {"hit@1": 0.95, "mrr": 0.95}  # measured 1.0 and 1.0
MIN_DECLINED = 0.875  # share of the unanswerable questions declined (measured 8 of 8)
MAX_FALSE_ABSTENTION = 0.05


@pytest.fixture(autouse=True)
def _reports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports go to ./eval-reports by default: keep them out of the checkout."""
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else {"text": result.output}  # notes go to stderr


@pytest.mark.slow
def test_the_sample_questions_keep_their_floor(bot: Assistant, shared_state: Path) -> None:
    report = run("--data-dir", str(shared_state), "eval", "retrieval", str(QA), "-c", "handbook", "--json")
    items = load_qa(QA)
    assert report["questions"] == len(items) and report["answerable"] == sum(bool(i.answers) for i in items)
    for metric, floor in FLOOR.items():
        assert report["metrics"][metric] >= floor, (
            metric,
            report["metrics"],
            [c for c in report["cases"] if c["rank"] != 1],
        )
    abstention = report["abstention"]
    assert abstention["recall"] >= MIN_DECLINED, [c["question"] for c in report["cases"] if not c["answerable"]]
    assert abstention["false_abstention_rate"] <= MAX_FALSE_ABSTENTION
    # The aggregates are those of the listed cases.
    cases = report["cases"]
    scored = [c for c in cases if c["answerable"]]
    assert report["metrics"]["hit@1"] == round(sum(c["rank"] == 1 for c in scored) / len(scored), 4)
    assert abstention["declined"] == sum(c["declined"] for c in cases)
    assert all(c["reason"] for c in cases if c["declined"])
    assert set(report["by_kind"]) == {c["kind"] for c in scored}


@pytest.mark.slow
def test_the_terminal_report_lists_metrics_and_misses(bot: Assistant, shared_state: Path, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"question": "How long is the X200 warranty?", "answers": ["24 months"], "source": "faq.txt"}\n'
        '{"question": "Who won the 2022 World Cup?", "answers": []}\n'
    )
    text = run("--data-dir", str(shared_state), "eval", "retrieval", str(qa), "-c", "handbook")["text"]
    assert "hit@1" in text and "nDCG@10" in text and "Abstention" in text
    (page,) = Path("eval-reports").glob("retrieval-*.html")  # beside its JSON, self-contained
    assert "data:image/png;base64," in page.read_text() and not EXTERNAL.search(page.read_text())
    assert "Not ranked first" in text and "faq.txt" in text  # the miss, with what came back instead


@pytest.mark.slow
def test_calibration_writes_thresholds_that_load_back(
    bot: Assistant, shared_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file = tmp_path / "assistant.toml"
    settings_file.write_text("# team settings\ntop_k = 4\n")
    report = run(
        "--data-dir", str(shared_state), "eval", "retrieval", str(QA), "-c", "handbook", "--json",
        "--calibrate", "--write-settings", "--settings-file", str(settings_file),
    )  # fmt: skip
    chosen = report["calibrated"]
    assert report["abstention"]["false_abstention_rate"] <= 0.05
    monkeypatch.setenv("ASSISTANT_CONFIG", str(settings_file))
    loaded = load_settings()
    assert loaded.top_k == 4 and "# team settings" in settings_file.read_text()
    for name, value in chosen.items():
        assert getattr(loaded, name) == pytest.approx(value)


def test_calibration_needs_unanswerable_questions(bot: Assistant, shared_state: Path, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "How long is the X200 warranty?", "answers": ["24 months"]}\n')
    result = CliRunner().invoke(
        cli, ["--data-dir", str(shared_state), "eval", "retrieval", str(qa), "-c", "handbook", "--calibrate"]
    )
    assert result.exit_code == 2 and "no unanswerable question" in result.output


def html_lists(page: str) -> dict[str, list[dict[str, str]]]:
    """Each section's table (folded or not) as rows of {column: text}, by heading (its count removed)."""
    from bs4 import BeautifulSoup

    lists: dict[str, list[dict[str, str]]] = {}
    for heading in BeautifulSoup(page, "lxml").find_all("h2"):
        name = re.sub(r" \(\d+\)$", "", heading.get_text())
        block = heading.find_next_sibling(["table", "details", "h2"])
        table = block if block is None or block.name == "table" else block.find("table")
        if table is None:  # a note says there are none
            lists[name] = []
            continue
        columns = [th.get_text() for th in table.select("thead th")]
        rows = [[td.get_text() for td in tr.find_all("td")] for tr in table.select("tbody tr")]
        lists[name] = [dict(zip(columns, row, strict=True)) for row in rows]
    return lists


@pytest.mark.slow
def test_the_html_report_lists_every_miss_and_every_wrong_decline(
    bot: Assistant, shared_state: Path, tmp_path: Path
) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"question": "How often is the X200 serviced?", "answers": ["500 hours"], "source": "x200_manual.md"}\n'
        # Labelled with a file that does not hold the answer: a miss, with what came first instead.
        '{"question": "How long is the X200 warranty?", "answers": ["24 months"], "source": "faq.txt"}\n'
        # Labelled answerable though the handbook does not say: declined, so wrongly declined, and a miss.
        '{"question": "Who won the football World Cup in 2022?", "answers": ["Argentina"], "source": "faq.txt"}\n'
        '{"question": "How do I bake sourdough bread?", "answers": []}\n'
    )
    out = tmp_path / "retrieval.json"
    text = run("--data-dir", str(shared_state), "eval", "retrieval", str(qa), "-c", "handbook", "-o", str(out))["text"]
    data = json.loads(out.read_text())
    misses = [c for c in data["cases"] if c["answerable"] and c["rank"] != 1]
    declined = [c for c in data["cases"] if c["answerable"] and c["declined"]]
    assert {c["question"] for c in misses} >= {
        "How long is the X200 warranty?",
        "Who won the football World Cup in 2022?",
    }
    assert [c["question"] for c in declined] == ["Who won the football World Cup in 2022?"]

    lists = html_lists(out.with_suffix(".html").read_text())
    shown = lists["Not ranked first"]
    assert [r["question"] for r in shown] == [c["question"] for c in misses]
    for row, case in zip(shown, misses, strict=True):
        assert row["expected"] == case["expected"] and row["rank"] == str(case["rank"] or "not found")
        first = case["sources"][0] if case["sources"] else "nothing"
        assert first in row["found first"]  # what came back instead
    assert "Not ranked first" in text  # as the terminal does (its table wraps long questions)
    shown = lists["Wrongly declined"]
    assert [(r["question"], r["expected"], r["reason"]) for r in shown] == [
        (c["question"], c["expected"], c["reason"]) for c in declined
    ]
    assert all(r["reason"] for r in shown) and "Wrongly declined" in text
    assert [r["question"] for r in lists["Every question"]] == [c["question"] for c in data["cases"]]
