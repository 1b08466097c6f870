"""A new user's first hour at the command line, through the real entry point, from directories
other than the project's: where the data goes, names that suggest the right fix, list output,
`info`, `init` and `--version`. Only the embedder is loaded (ingest), and the model in one test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.cli import cli
from memory import NewMessage, SQLMemory, create_memory_engine
from memory.audit import NewEscalation
from tests.conftest import HANDBOOK, ROOT

CLI = [sys.executable, "-m", "assistant.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user: no ASSISTANT_* setting, no user data directory chosen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "XDG_DATA_HOME"}
    env.update(PYTHONPATH=str(ROOT), NO_COLOR="1", **extra)
    return env


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def invoke(*args: str, env: dict[str, str]) -> Result:
    """The same command in this process (click's runner): quicker, for commands that load no model."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def tree(folder: Path) -> list[tuple[str, int, float]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*"))


@pytest.mark.slow
def test_version_is_the_package_version(tmp_path: Path) -> None:
    done = run("--version", cwd=tmp_path, env=clean_env())
    assert done.returncode == 0 and done.stdout.strip() == f"assistant, version {version('assistant')}"


@pytest.mark.slow
def test_data_lives_in_the_user_dir_a_project_or_where_the_environment_says(tmp_path: Path) -> None:
    xdg, elsewhere, project = tmp_path / "xdg", tmp_path / "elsewhere", tmp_path / "project"
    elsewhere.mkdir()
    env = clean_env(XDG_DATA_HOME=str(xdg))

    user = json.loads(run("info", "--json", cwd=elsewhere, env=env).stdout)
    assert user["data_dir"] == str(xdg / "assistant") and "user data directory" in user["data_dir_origin"]
    assert user["data_dir_exists"] is False and user["collections"] == []  # info creates nothing
    assert user["version"] == version("assistant") and user["large_model"] is None
    assert not xdg.exists() and list(elsewhere.iterdir()) == []

    deeper = project / "docs" / "deeper"
    deeper.mkdir(parents=True)
    made = run("init", cwd=project, env=env)
    assert made.returncode == 0 and str(project / ".assistant") in made.stdout
    (project / "assistant.toml").write_text('fallback_base_url = "http://127.0.0.1:9/v1"\nfallback_model = "big"\n')
    found = json.loads(run("info", "--json", cwd=deeper, env=env).stdout)
    assert found["data_dir"] == str(project / ".assistant") and "project" in found["data_dir_origin"]
    assert found["config_file"] == str(project / "assistant.toml") and found["config_file_exists"] is True
    assert found["large_model"] == "big at http://127.0.0.1:9/v1"  # the project's config, read from below it
    shown = run("info", cwd=deeper, env=env).stdout
    assert f"data dir  {project / '.assistant'}" in shown and "big at http://127.0.0.1:9/v1" in shown
    assert "already a project" in run("init", cwd=project, env=env).stdout

    chosen = tmp_path / "chosen"
    by_env = json.loads(run("info", "--json", cwd=deeper, env={**env, "ASSISTANT_DATA_DIR": str(chosen)}).stdout)
    assert by_env["data_dir"] == str(chosen) and by_env["data_dir_origin"] == "set by ASSISTANT_DATA_DIR"
    flag = tmp_path / "flag"
    by_flag = run("--data-dir", str(flag), "info", "--json", cwd=deeper, env={**env, "ASSISTANT_DATA_DIR": str(chosen)})
    assert json.loads(by_flag.stdout)["data_dir"] == str(flag)


@pytest.fixture
def conversations(tmp_path: Path) -> Path:
    """A data dir with two users' sessions, a fact and one large-model call, written by the real store."""
    data = tmp_path / "data"
    memory = SQLMemory(create_memory_engine(f"sqlite:///{data / 'assistant.db'}"))
    memory.add_turn("lead", "team1", NewMessage("user", "Who is on call?"), NewMessage("assistant", "Dana."))
    memory.add_turn("zoe", "desk", NewMessage("user", "Where do visitors park?"), NewMessage("assistant", "Level -1."))
    memory.facts.add("zoe", "fact", "The user runs the front desk.")
    memory.engine.dispose()
    return data


def test_session_and_user_names_suggest_the_right_fix(conversations: Path) -> None:
    env = {"ASSISTANT_DATA_DIR": str(conversations)}

    shown = invoke("sessions", "show", "team1", env=env)  # no --user: found under 'lead'
    assert shown.exit_code == 0, shown.stderr
    assert "1 user: Who is on call?" in shown.stdout and "2 assistant: Dana." in shown.stdout

    typo = invoke("sessions", "show", "tem1", env=env)
    assert typo.exit_code == 2 and "session 'tem1' does not exist; did you mean session 'team1'?" in typo.stderr
    other = invoke("sessions", "show", "team1", "--user", "led", env=env)
    assert other.exit_code == 2 and "did you mean user 'lead'?" in other.stderr
    mine = invoke("sessions", "show", "team2", "--user", "lead", env=env)
    assert mine.exit_code == 2 and "did you mean session 'team1'?" in mine.stderr
    facts = invoke("memory", "list", "--user", "zoey", env=env)
    assert facts.exit_code == 2 and "user 'zoey' does not exist; did you mean user 'zoe'?" in facts.stderr

    memory = SQLMemory(create_memory_engine(f"sqlite:///{conversations / 'assistant.db'}"))
    memory.add_turn("zoe", "team1", NewMessage("user", "Mine too?"), NewMessage("assistant", "Yes."))
    memory.engine.dispose()
    both = invoke("sessions", "show", "team1", env=env)
    assert both.exit_code == 2 and "several users (lead, zoe)" in both.stderr and "--user" in both.stderr
    assert "Mine too?" in invoke("sessions", "show", "team1", "--user", "zoe", env=env).stdout


def test_lists_have_headers_json_and_say_when_empty(conversations: Path) -> None:
    env = {"ASSISTANT_DATA_DIR": str(conversations)}

    sessions = invoke("sessions", "list", env=env).stdout.splitlines()
    assert sessions[0].split() == ["USER", "SESSION", "MESSAGES", "UPDATED", "TITLE"]
    assert sessions[1].split()[:3] == ["zoe", "desk", "2"] and sessions[2].split()[:3] == ["lead", "team1", "2"]
    assert sessions[1].index("desk") == sessions[0].index("SESSION")  # aligned under its header
    listed = json.loads(invoke("sessions", "list", "--json", env=env).stdout)
    assert [(s["user"], s["session"], s["messages"]) for s in listed] == [("zoe", "desk", 2), ("lead", "team1", 2)]
    assert listed[0]["title"] == "Where do visitors park?" and "T" in listed[0]["updated"]

    users = invoke("users", "list", env=env).stdout.splitlines()
    assert [line.split()[:2] for line in users] == [["USER", "SESSIONS"], ["lead", "1"], ["zoe", "1"]]
    assert [u["user"] for u in json.loads(invoke("users", "list", "--json", env=env).stdout)] == [
        "lead",
        "zoe",
    ]
    facts = invoke("memory", "list", "--user", "zoe", env=env).stdout.splitlines()
    assert facts[0].split() == ["ID", "KIND", "CONTENT", "SAID"] and "The user runs the front desk." in facts[1]
    nothing = invoke("memory", "list", "--user", "lead", env=env)
    assert nothing.stdout == "" and "nothing remembered about 'lead'" in nothing.stderr
    assert json.loads(invoke("memory", "list", "--user", "lead", "--json", env=env).stdout) == []

    none = invoke("escalations", env=env)
    assert none.exit_code == 0 and none.stdout == "" and "no escalations yet" in none.stderr
    assert json.loads(invoke("escalations", "--json", env=env).stdout) == []
    memory = SQLMemory(create_memory_engine(f"sqlite:///{conversations / 'assistant.db'}"))
    memory.escalations.record(
        NewEscalation(
            user_id="zoe",
            session_id="desk",
            collection="support",
            endpoint="http://127.0.0.1:9/v1",
            model="big",
            reason="low confidence",
            request={"messages": [{"role": "user", "content": "Where do visitors park?"}]},
            status="ok",
            attempts=1,
            prompt_tokens=30,
            completion_tokens=5,
            duration_ms=12.0,
        )
    )
    memory.engine.dispose()
    calls = invoke("escalations", env=env).stdout.splitlines()
    assert calls[0].split()[:4] == ["CREATED_AT", "WHO", "STATUS", "ATTEMPTS"]
    assert "zoe/desk" in calls[1] and "30+5" in calls[1] and "low confidence" in calls[1]
    [call] = json.loads(invoke("escalations", "--json", env=env).stdout)
    assert call["request"]["messages"][0]["content"] == "Where do visitors park?" and call["model"] == "big"

    empty = invoke("collections", "list", env=env)
    assert empty.stdout == "" and "no collections yet" in empty.stderr
    assert json.loads(invoke("collections", "list", "--json", env=env).stdout) == []
    assert json.loads(invoke("collections", "--json", env=env).stdout) == []  # the group lists too


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A home with a copy of the handbook, ingested from inside it as `support`, data in the user dir."""
    home = tmp_path_factory.mktemp("home")
    docs = home / "team-docs"
    shutil.copytree(HANDBOOK, docs)
    env = clean_env(XDG_DATA_HOME=str(home / ".local" / "share"))
    before = tree(docs)
    done = run("ingest", ".", "--collection", "support", cwd=docs, env=env)
    assert done.returncode == 0, done.stderr
    assert tree(docs) == before, "ingesting a folder from inside it wrote into it"
    yield home, env


@pytest.mark.slow
def test_ingest_writes_nothing_into_the_folder_and_one_collection_is_the_default(
    ingested: tuple[Path, dict[str, str]],
) -> None:
    home, env = ingested
    docs = home / "team-docs"
    assert not (docs / ".assistant").exists() and not (home / ".assistant").exists()
    data = home / ".local" / "share" / "assistant"
    assert (data / "assistant.db").is_file()

    described = json.loads(run("collections", "describe", "--json", cwd=docs, env=env).stdout)  # no name
    assert described["name"] == "support" and described["documents"] == 4
    typo = run("collections", "describe", "suport", cwd=home, env=env)
    assert typo.returncode == 2
    assert "collection 'suport' does not exist; did you mean 'support'?" in typo.stderr
    far = run("collections", "describe", "payroll", cwd=home, env=env)
    assert "(known: support)" in far.stderr and "assistant ingest PATH --collection payroll" in far.stderr

    shown = run("info", cwd=home, env=env)
    assert shown.returncode == 0 and str(data) in shown.stdout
    assert f"support ({described['documents']} documents, {described['chunks']} chunks)" in shown.stdout
    rows = run("collections", "list", cwd=docs, env=env).stdout.splitlines()
    assert rows[0].split() == ["NAME", "DOCUMENTS", "CHUNKS", "EMBEDDER", "LOCAL_ONLY"]
    assert rows[1].split()[:3] == ["support", "4", str(described["chunks"])]
    assert [name for name, _, _ in tree(docs)] == sorted(p.name for p in HANDBOOK.iterdir())  # still nothing added


@pytest.mark.llm
def test_ask_without_a_collection_uses_the_only_one_and_a_typo_is_met_with_its_fix(
    ingested: tuple[Path, dict[str, str]],
) -> None:
    home, env = ingested
    typo = run("ask", "Where do visitors park?", "-c", "suport", cwd=home, env=env)
    assert typo.returncode == 2 and "did you mean 'support'?" in typo.stderr and "Traceback" not in typo.stderr
    answered = run("ask", "Where do visitors park?", cwd=home / "team-docs", env=env)
    assert answered.returncode == 0, answered.stderr
    assert "faq.txt" in answered.stdout and "route:" in answered.stdout

    run("collections", "create", "other", cwd=home, env=env)
    several = run("ask", "Where do visitors park?", cwd=home, env=env)
    assert several.returncode == 2 and "several (other, support)" in several.stderr and "-c" in several.stderr
