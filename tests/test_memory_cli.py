"""`assistant memory | sessions export/import | users | db`: real SQLite under a data dir, no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.cli import cli
from memory import NewMessage, SQLMemory, create_memory_engine
from memory.migrate import head_revision


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    memory = SQLMemory(create_memory_engine(f"sqlite:///{tmp_path / 'assistant.db'}"))
    memory.add_turn("zoe", "desk", NewMessage("user", "Where do visitors park?"), NewMessage("assistant", "Level -1."))
    memory.add_turn(
        "zoe", "desk", NewMessage("user", "And staff?"), NewMessage("assistant", "Level -2.", route="local")
    )
    memory.engine.dispose()
    return tmp_path


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)


def test_memory_add_list_edit_forget(data_dir: Path) -> None:
    assert run(data_dir, "memory", "list", "--user", "zoe").output.strip() == "nothing remembered about 'zoe'"
    added = run(data_dir, "memory", "add", "The user runs the front desk.", "--user", "zoe")
    fact_id = int(added.output.split(":")[0])
    run(data_dir, "memory", "add", "--preference", "The user wants brief answers.", "--user", "zoe")
    listed = json.loads(run(data_dir, "memory", "list", "--user", "zoe", "--json").output)
    assert [(f["kind"], f["content"]) for f in listed] == [
        ("preference", "The user wants brief answers."),
        ("fact", "The user runs the front desk."),
    ]
    edited = run(data_dir, "memory", "edit", str(fact_id), "The user runs the night desk.", "--user", "zoe")
    assert edited.exit_code == 0 and "night desk" in edited.output
    assert "night desk" in run(data_dir, "memory", "list", "--user", "zoe").output

    other = run(data_dir, "memory", "forget", str(fact_id), "--user", "max")
    assert other.exit_code == 2 and f"fact {fact_id} of user 'max' does not exist" in other.output
    assert run(data_dir, "memory", "forget", str(fact_id), "--user", "zoe").exit_code == 0
    assert "forgot 1 facts" in run(data_dir, "memory", "forget", "--all", "--user", "zoe").output
    assert run(data_dir, "memory", "forget", "--user", "zoe").exit_code == 2  # neither an id nor --all


@pytest.mark.slow
def test_sessions_export_import_show(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "desk.json"
    assert run(data_dir, "sessions", "export", "desk", "--user", "zoe", "-o", str(out)).exit_code == 0
    document = json.loads(out.read_text())
    assert document["format"] == "assistant-session" and len(document["messages"]) == 4
    assert run(data_dir, "sessions", "import", str(out), "--session", "copy").exit_code == 0
    shown = run(data_dir, "sessions", "show", "copy", "--user", "zoe").output
    assert "1 user: Where do visitors park?" in shown and "4 assistant [local]: Level -2." in shown

    again = run(data_dir, "sessions", "import", str(out))
    assert again.exit_code == 2 and "already exists" in again.output
    document["messages"][1]["role"] = "robot"
    out.write_text(json.dumps(document))
    bad = run(data_dir, "sessions", "import", str(out), "--session", "other")
    assert bad.exit_code == 2 and f"{out}: messages[1].role" in bad.output
    out.write_text("{not json")
    broken = run(data_dir, "sessions", "import", str(out), "--session", "other")
    assert broken.exit_code == 2 and "is not a JSON file" in broken.output
    assert "other" not in run(data_dir, "sessions", "list").output


def test_users_delete_and_db_commands(data_dir: Path) -> None:
    run(data_dir, "memory", "add", "The user runs the front desk.", "--user", "zoe")
    listed = run(data_dir, "users", "list").stdout.splitlines()
    assert [line.split()[0] for line in listed[1:]] == ["zoe"]
    gone = run(data_dir, "users", "delete", "zoe", "--yes")
    assert gone.output.strip() == "deleted user 'zoe': 1 sessions, 4 messages, 1 facts"
    assert run(data_dir, "users", "list").stdout == ""
    missing = run(data_dir, "users", "delete", "zoe", "--yes")
    assert missing.exit_code == 2 and "user 'zoe' does not exist" in missing.output

    current = run(data_dir, "db", "current").output
    assert f"revision {head_revision()} (up to date)" in current
    fresh = data_dir / "fresh"
    assert f"at revision {head_revision()}" in run(fresh, "db", "upgrade").output
