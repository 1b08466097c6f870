"""Bad input gives one clear message; the CLI prints no traceback for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import ConfigurationError, ModelUnavailableError, Settings, load_settings
from assistant.factory import build_local_llm
from tests.conftest import HANDBOOK

CLI = [sys.executable, "-m", "assistant.cli"]


def run_cli(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_TOP_K", "lots")
    with pytest.raises(ConfigurationError, match="ASSISTANT_TOP_K"):
        load_settings()


def test_toml_config_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text('top_k = 7\ndefault_collection = "legal"\n')
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    settings = load_settings()
    assert (settings.top_k, settings.default_collection) == (7, "legal")


def test_missing_and_corrupt_gguf_are_clear_errors(tmp_path: Path) -> None:
    missing = build_local_llm(Settings(llm_model_path=tmp_path / "none.gguf"))
    with pytest.raises(ModelUnavailableError, match="file not found"):
        missing.load()
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelUnavailableError, match=r"llama\.cpp cannot load it"):
        build_local_llm(Settings(llm_model_path=corrupt)).load()
    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelUnavailableError, match="not a GGUF file"):
        build_local_llm(Settings(llm_model_path=not_gguf)).load()


@pytest.mark.slow
def test_cli_reports_user_errors_without_traceback(tmp_path: Path) -> None:
    result = run_cli("ask", "How often?", "-c", "nope", data_dir=tmp_path)
    assert result.returncode == 2
    assert "collection 'nope' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    bad = run_cli("ask", "x", data_dir=tmp_path, env={"ASSISTANT_MIN_RELEVANCE": "high"})
    assert bad.returncode == 2 and "ASSISTANT_MIN_RELEVANCE" in bad.stderr and "Traceback" not in bad.stderr
    assert run_cli("ingest", str(HANDBOOK / "faq.txt"), "-c", "faq", data_dir=tmp_path).returncode == 0
    missing = str(tmp_path / "x.gguf")
    gguf = run_cli(
        "ask", "Where do visitors park?", "-c", "faq", data_dir=tmp_path, env={"ASSISTANT_LLM_MODEL_PATH": missing}
    )
    assert gguf.returncode == 1
    assert f"model {missing}: file not found" in gguf.stderr and "ASSISTANT_LLM_MODEL_PATH" in gguf.stderr
    assert "Traceback" not in gguf.stderr


@pytest.mark.llm
def test_cli_ingest_ask_and_sessions(tmp_path: Path) -> None:
    ingest = run_cli("ingest", str(HANDBOOK), "-c", "handbook", data_dir=tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    assert "4 new" in ingest.stdout
    ask = run_cli(
        "ask",
        "What is the extension for building security?",
        "-c",
        "handbook",
        "--user",
        "zoe",
        "--session",
        "desk",
        data_dir=tmp_path,
    )
    assert ask.returncode == 0, ask.stderr
    assert "5555" in ask.stdout and "faq.txt" in ask.stdout and "route: local" in ask.stdout
    listed = run_cli("sessions", "list", "--user", "zoe", data_dir=tmp_path)
    assert listed.stdout.splitlines()[1].split()[:3] == ["zoe", "desk", "2"], listed.stdout
    shown = run_cli("sessions", "show", "desk", "--user", "zoe", data_dir=tmp_path)
    assert "user: What is the extension for building security?" in shown.stdout
    assert "assistant [local]:" in shown.stdout
    deleted = run_cli("sessions", "delete", "desk", "--user", "zoe", data_dir=tmp_path)
    assert deleted.returncode == 0
    again = run_cli("sessions", "show", "desk", "--user", "zoe", data_dir=tmp_path)
    assert again.returncode == 2 and "does not exist" in again.stderr


@pytest.mark.llm
def test_cli_chat_streams_and_prints_sources(tmp_path: Path) -> None:
    run_cli("ingest", str(HANDBOOK), "-c", "handbook", data_dir=tmp_path)
    chat = subprocess.run(
        [*CLI, "--data-dir", str(tmp_path), "chat", "-c", "handbook"],
        input="Where do visitors park?\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert chat.returncode == 0, chat.stderr
    assert "level -1" in chat.stdout and "[1] faq.txt" in chat.stdout


@pytest.mark.slow
def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    result = run_cli("collections", data_dir=blocker)
    assert result.returncode == 2, result.stderr
    assert "not-a-folder" in result.stderr and "ASSISTANT_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_config_file_and_unknown_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text("top_k = = 3\n")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        load_settings()
    config.write_text("top_kk = 3\n")
    with pytest.raises(ConfigurationError, match=r"setting 'top_kk': is not a setting"):
        load_settings()
