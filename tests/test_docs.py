"""The README and docs/ say only what is true: generated reference current, code blocks that run.

- docs/settings.md equals what scripts/settings_reference.py generates;
- every ```python block runs (a subprocess in a temporary directory, the repository on
  sys.path, `data/` linked in), unless `<!-- not-run: why -->` stands right before it;
- every `assistant ...` line of a bash/console/sh block names a real command, and each
  option it uses appears in that command's --help;
- every ```toml block parses and holds only known settings, with valid values;
- every ```json block is JSON (or JSON lines);
- every ASSISTANT_* variable mentioned is a setting, a documented extra read by the code,
  or a shell variable a docs block exports;
- every relative link points at an existing file (and heading, for #anchors).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from assistant.settings import ENV_PREFIX, Settings
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REGENERATE = ".venv/bin/python scripts/settings_reference.py --write"
SHELLS = {"bash", "console", "sh", "shell"}
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.+?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
# Environment variables the docs may name that are not settings, with a file that reads each.
EXTRA_VARIABLES = {
    "ASSISTANT_CONFIG": "assistant/settings.py",
    "ASSISTANT_LLM_API_KEY": "assistant/settings.py",
    "ASSISTANT_WHEEL_CACHE": "scripts/bootstrap.sh",
    "ASSISTANT_TEST_POSTGRES_URL": "tests/conftest.py",
}
# A python block that builds an assistant without the fakes of assistant.testing runs the real model: marked llm.
NEEDS_MODEL = re.compile(r"\bAssistant\b|build_assistant|\.ingest\(|\.ask\(")
FAKES = "FakeChatModel"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None  # the reason given in a not-run comment right before it

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, lang = opening.groups()
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[index + 1 : end]]
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = NOT_RUN.search(before)
        found.append(Block(path, index + 1, lang.lower(), "\n".join(body) + "\n", marker and marker.group(1)))
        index = end + 1
    return found


ALL_BLOCKS = [block for path in DOCS for block in blocks(path)]


def prose(path: Path) -> str:
    """The file without its fenced blocks."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^\s*```.*?^\s*```\s*$", "", text, flags=re.DOTALL | re.MULTILINE)


def of(lang: set[str]) -> list[Block]:
    return [block for block in ALL_BLOCKS if block.lang in lang]


# The generated settings reference


def test_the_settings_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("settings_reference", ROOT / "scripts" / "settings_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = ROOT / "docs" / "settings.md"
    current = target.read_text(encoding="utf-8") if target.exists() else ""
    assert current == module.render(), f"docs/settings.md is out of date; regenerate it with: {REGENERATE}"


def test_the_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move the detail to docs/ (at most about 200)"


# Python blocks


def python_params() -> list[object]:
    params = []
    for block in of({"python", "py"}):
        real_model = NEEDS_MODEL.search(block.code) and FAKES not in block.code and not block.not_run
        marks = [pytest.mark.llm] if real_model else []
        params.append(pytest.param(block, id=block.where, marks=marks))
    return params


@pytest.mark.parametrize("block", python_params())
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    if block.not_run:
        pytest.skip(f"not-run: {block.not_run}")
    (tmp_path / "data").symlink_to(ROOT / "data")  # the examples name data/handbook
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", block.code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{block.where} failed:\n{done.stderr[-3000:]}"


# Shell blocks: `assistant ...` commands


def logical_lines(code: str) -> list[str]:
    return [line.removeprefix("$ ").strip() for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def assistant_commands() -> list[tuple[str, str]]:
    found = []
    for block in of(SHELLS):
        for line in logical_lines(block.code):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue  # not a simple command (e.g. a quoted pipeline): nothing to check
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
                words = words[1:]  # VAR=value assistant ...
            if words and words[0] == "assistant":
                found.append((block.where, shlex.join(words)))
    return found


def help_of(path: list[str]) -> str:
    from assistant.cli import cli

    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="assistant")
    assert result.exit_code == 0, f"assistant {' '.join(path)} --help failed: {result.output}"
    return result.output


def test_the_docs_show_commands() -> None:
    assert len(assistant_commands()) >= 20  # the check below is not vacuous


@pytest.mark.parametrize(("where", "command"), assistant_commands(), ids=[c for _, c in assistant_commands()])
def test_assistant_command_exists(where: str, command: str) -> None:
    from assistant.cli import cli

    words = shlex.split(command)[1:]
    current: click.Command = cli
    path: list[str] = []
    expect_value = False
    for word in words:
        if expect_value:
            expect_value = False
            continue
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            if re.fullmatch(r"-[a-zA-Z]{2,}", name) and len(set(name[1:])) == 1:
                name = name[:2]  # -vv: a counted flag
            option = next(
                (p for p in current.params if isinstance(p, click.Option) and name in (*p.opts, *p.secondary_opts)),
                None,
            )
            assert option is not None, f"{where}: `{command}`: `assistant {' '.join(path)}` has no option {name}"
            assert name in help_of(path), f"{where}: {name} is not in `assistant {' '.join(path)} --help`"
            expect_value = "=" not in word and not option.is_flag and not option.count
            continue
        if isinstance(current, click.Group):
            sub = current.get_command(click.Context(current), word)  # subcommands load when asked for
            assert sub is not None, f"{where}: `{command}`: `assistant {' '.join(path)}` has no command {word!r}"
            current = sub
            path.append(word)
    help_of(path)


# TOML and JSON blocks


@pytest.mark.parametrize("block", of({"toml"}), ids=lambda b: b.where)
def test_toml_block_holds_known_settings(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = tomllib.loads(block.code)
    unknown = sorted(set(values) - set(Settings.model_fields))
    assert not unknown, f"{block.where}: not settings: {unknown}"
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no assistant.toml or .env of ours is read
    Settings(**values)  # values of the right type and range


@pytest.mark.parametrize("block", of({"json", "jsonl"}), ids=lambda b: b.where)
def test_json_block_parses(block: Block) -> None:
    try:
        json.loads(block.code)
    except json.JSONDecodeError:
        for line in block.code.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                json.loads(line)


# Environment variables and links


def test_every_environment_variable_mentioned_exists() -> None:
    for variable, reader in EXTRA_VARIABLES.items():
        assert variable in (ROOT / reader).read_text(encoding="utf-8"), f"{reader} no longer reads {variable}"
    exported = {  # shell variables a docs block sets itself (export URL=... KEY=...)
        name
        for block in of(SHELLS)
        for line in re.findall(r"^\s*export\s+(.*)$", block.code, flags=re.MULTILINE)
        for name in re.findall(r"([A-Z_][A-Z0-9_]*)=", line)
    }
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | set(EXTRA_VARIABLES) | exported
    for path in DOCS:
        mentioned = set(re.findall(rf"\b{ENV_PREFIX}[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
        unknown = sorted(mentioned - known)
        assert not unknown, f"{path.relative_to(ROOT)} names variables that nothing reads: {unknown}"


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+\s+(.+?)\s*$", prose(path), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_relative_links_point_at_files() -> None:
    broken = []
    for path in DOCS:
        for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(path)):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            where = f"{path.relative_to(ROOT)} → {target}"
            if not resolved.exists():
                broken.append(f"{where}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where}: no such heading")
    assert not broken, "broken links:\n" + "\n".join(broken)
