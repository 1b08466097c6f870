"""How many distributions a plain install pulls in, and how many each extra adds.

Walks the requirements of pyproject.toml transitively through the metadata of the
packages installed in this environment (no network, nothing installed), with each
requirement's extras and environment markers honoured. `--pyproject` takes another
file, e.g. the one of an earlier commit:

    python benchmarks/deps_count.py
    git show HEAD~1:pyproject.toml > /tmp/old.toml && python benchmarks/deps_count.py --pyproject /tmp/old.toml
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def closure(requirements: list[str]) -> tuple[set[str], set[str]]:
    """(the distributions reached, those of them not installed here) from these requirement strings."""
    seen: set[tuple[str, str]] = set()  # (distribution, extra or "")
    reached: set[str] = set()
    missing: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        for extra in req.extras or {""}:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            reached.add(name)
            try:
                requires = metadata.requires(req.name) or []
            except metadata.PackageNotFoundError:
                missing.add(name)
                continue
            for raw in requires:
                sub = Requirement(raw)
                if sub.marker is None or sub.marker.evaluate({"extra": extra}):
                    todo.append(sub)
    return reached, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args()
    project = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))["project"]
    core = project["dependencies"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    plain, missing = closure(core)
    print(f"plain install: {len(plain)} distributions ({len(core)} direct)")
    for name, requirements in extras.items():
        own = [r for r in requirements if canonicalize_name(Requirement(r).name) != project["name"]]
        nested = [e for r in requirements if canonicalize_name(Requirement(r).name) == project["name"]
                  for e in Requirement(r).extras]  # fmt: skip
        for extra in nested:
            own += extras[extra]
        with_extra, gone = closure(core + own)
        missing |= gone
        print(f"  [{name}]: {len(with_extra)} (+{len(with_extra - plain)})")
    if missing:
        print(f"not installed here, counted without their own requirements: {', '.join(sorted(missing))}")


if __name__ == "__main__":
    main()
