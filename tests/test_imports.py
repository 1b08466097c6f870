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
