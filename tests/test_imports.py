"""Each package imports on its own, in a fresh interpreter, with no cycle and no model load."""

from __future__ import annotations

import subprocess
import sys

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
def test_package_imports_alone(module: str) -> None:
    code = f"import {module}, sys; print(sorted({{'torch', 'llama_cpp', 'onnxruntime'}} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


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
