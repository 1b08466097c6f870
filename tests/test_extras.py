"""A plain install runs the library and the everyday CLI; `serve` and `eval` name the extra they need.

This venv has every extra installed, so a missing one cannot be provoked for real.
The tests run the CLI in a subprocess with a fake for that failure: the path finder
on `sys.meta_path` is swapped for one that does not see the extras' modules, so Python
answers for them exactly as for a module that is not installed. Everything else is real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.extras import EXTRAS

# Runs before anything of ours: the path finder stops seeing the named top-level modules, as
# if they were not installed (find_spec gives None, import raises ModuleNotFoundError); then
# the code or the CLI runs.
BLOCKER = """
import sys
from importlib.machinery import PathFinder
BLOCKED = set(sys.argv.pop(1).split(","))

class NotInstalled(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [NotInstalled if finder is PathFinder else finder for finder in sys.meta_path]
if sys.argv[1] == "--code":
    exec(sys.argv[2])
else:
    from assistant.cli import main
    main()
"""

SERVER = list(EXTRAS["server"])
EVAL = list(EXTRAS["eval"])


def without(modules: list[str], *args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    extra = [] if args and args[0] == "--code" else ["--data-dir", str(data_dir)]
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(modules), *extra, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ASSISTANT_DATA_DIR": str(data_dir)},
        timeout=300,
    )


def test_serve_without_the_server_extra_names_it(tmp_path: Path) -> None:
    result = without(SERVER[:1], "serve", "--port", "1", data_dir=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "`assistant serve` needs the server extra: pip install 'assistant[server]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_without_the_eval_extra_names_it(tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "How often?", "answers": ["yearly"]}\n', encoding="utf-8")
    result = without(["sklearn"], "eval", "retrieval", str(qa), data_dir=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "`assistant eval retrieval` needs the eval extra: pip install 'assistant[eval]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_package_names_its_extra_to_python_users(tmp_path: Path) -> None:
    code = (
        "from assistant.extras import MissingExtraError\n"
        "try:\n    import assistant.server\nexcept MissingExtraError as exc:\n    print(exc)\n"
    )
    result = without(SERVER, "--code", code, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "assistant.server needs the server extra: pip install 'assistant[server]'" in result.stdout


@pytest.mark.slow
def test_library_and_everyday_cli_need_no_extra(tmp_path: Path) -> None:
    code = "import assistant\nfrom assistant import Assistant, Settings, build_assistant\nprint(Assistant.__name__)"
    result = without(SERVER + EVAL, "--code", code, data_dir=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "Assistant"), result.stderr
    for command in ([], ["ingest"], ["ask"], ["chat"], ["sessions"], ["eval"], ["eval", "review"]):
        result = without(SERVER + EVAL, *command, "--help", data_dir=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        assert "Usage: assistant" in result.stdout
