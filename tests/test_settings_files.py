"""Settings from a `.env` shared with other tools: only ASSISTANT_* names there are ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import ConfigurationError
from assistant.settings import load_settings


def test_other_tools_variables_in_dotenv_are_ignored_and_ours_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSISTANT_TOP_K", raising=False)
    (tmp_path / ".env").write_text("DEBUG=1\nSECRET_KEY=abc\nDATABASE_URL=postgresql://x\nASSISTANT_TOP_K=7\n")
    settings = load_settings()
    assert settings.top_k == 7
    assert settings.database_url != "postgresql://x"  # another tool's variable, not ours


def test_a_misspelt_assistant_variable_in_dotenv_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ASSISTANT_TOPK=7\n")
    with pytest.raises(ConfigurationError, match="assistant_topk"):
        load_settings()
