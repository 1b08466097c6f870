"""Each package imports on its own, in a fresh interpreter, with no cycle and no model load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "assistant",
        "assistant.errors",
        "memory",
        "memory.store",
        "chains.pipeline",
        "retrievers.store",
        "retrievers.index",
    ],
)
@pytest.mark.slow
def test_package_imports_alone(module: str) -> None:
    code = f"import {module}, sys; print(sorted({{'torch', 'llama_cpp', 'onnxruntime'}} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


# What importing the library must not pull in: model runtimes, the vector store, the schema
# migrator, the web server and the evaluation stack are imported by what uses them.
HEAVY = (
    "alembic",
    "llama_cpp",
    "torch",
    "sentence_transformers",
    "onnxruntime",
    "chromadb",
    "fastapi",
    "uvicorn",
    "assistant.evals",
    "assistant.server",
    "assistant.cli",
)


def imported(code: str, *, env: dict[str, str] | None = None) -> list[str]:
    """The HEAVY modules (or their submodules) in sys.modules after `code` ran in a fresh interpreter."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in {HEAVY!r}))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("statement", ["import assistant", "from assistant import Assistant"])
@pytest.mark.slow
def test_importing_the_library_imports_no_model_store_server_or_eval(statement: str) -> None:
    assert imported(statement) == []


@pytest.mark.slow
def test_every_public_name_still_imports() -> None:
    code = "import assistant\nfor name in assistant.__all__: getattr(assistant, name)"
    assert imported(code) == []  # resolving every name loads no model, store or server


@pytest.mark.slow
def test_a_command_imports_only_what_it_runs(tmp_path: Path) -> None:
    """`assistant info` loads no model and opens no vector store; no command imports the server or evals."""
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(tmp_path / "state")}
    code = (
        "from assistant.cli import cli\n"
        "try:\n    cli(['info', '--json'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    assert [m for m in imported(code, env=env) if not m.startswith("assistant.cli")] == []
    assert not (tmp_path / "state").exists()  # and creates nothing


def test_the_layers_point_one_way() -> None:
    """chains receive memory and retrievers; memory and retrievers never import chains."""
    import ast

    from tests.conftest import ROOT

    for package in ("memory", "retrievers"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                assert not any(n == "chains" or n.startswith("chains.") for n in names), path


def test_no_two_modules_import_each_other() -> None:
    """No import cycle among our modules, however indirect.

    Counts every import: at module level, inside functions (a deferred import is still
    a dependency) and under `if TYPE_CHECKING:` (a cycle hidden from the interpreter is
    still one for the reader). A cycle is a strongly connected component of two or more
    modules in the import graph.
    """
    graph = _import_graph()
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join("  " + " <-> ".join(cycle) for cycle in cycles)


def _import_graph() -> dict[str, set[str]]:
    import ast

    from tests.conftest import ROOT

    modules: dict[str, Path] = {}
    for package in ("assistant", "chains", "memory", "retrievers"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[:3] == ("memory", "migrations", "versions"):
                continue
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            deps.update(t for t in targets if t in modules and t != name)
        graph[name] = deps
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)
