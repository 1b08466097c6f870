"""The README's quick start, run as written, from a home directory that is not the project's.

Each `assistant ...` line of the block runs in a shell whose HOME is a fresh temporary
directory holding `team-docs` (a copy of the sample handbook) and whose PATH starts with
this environment's `assistant`. Nothing is set that the README does not say, so the data
must land in the user data directory, and the ingested folder must stay as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANDBOOK, ROOT

pytestmark = pytest.mark.llm


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the README's quick start has no bash block"
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line.startswith("assistant ")]


def tree(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


def test_the_readme_quick_start_works_from_another_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(HANDBOOK, home / "team-docs")
    before = tree(home / "team-docs")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ASSISTANT_") and key not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")
    }
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", NO_COLOR="1")

    commands = quick_start_commands()
    assert [c.split()[1] for c in commands] == ["ingest", "ask", "chat", "info"], commands
    outputs: dict[str, str] = {}
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=home,
            env=env,
            input="/quit\n",  # `chat` reads its questions from stdin: quit at once
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        outputs[command.split()[1]] = done.stdout + done.stderr

    assert re.search(r"\b[1-9]\d* new\b", outputs["ingest"]), outputs["ingest"]
    assert "route:" in outputs["ask"], outputs["ask"]  # answered or declined, from the only collection
    data = home / ".local" / "share" / "assistant"
    assert str(data) in outputs["info"], outputs["info"]
    assert "support" in outputs["info"], outputs["info"]
    assert any(data.iterdir()), f"nothing was stored in {data}"
    assert tree(home / "team-docs") == before, "the ingested folder was changed"
    assert not (home / ".assistant").exists(), "state was written into the working directory"
