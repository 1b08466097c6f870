"""Walk a folder for documents: stable order, hidden entries left out, symlinks
followed once (a loop is reported, not followed forever), each file seen once."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import InputFileError
from retrievers.report import FileIssue

__all__ = ["Scan", "scan"]


@dataclass
class Scan:
    root: Path  # absolute, symlinks kept as written
    files: list[Path] = field(default_factory=list)  # absolute paths under root
    issues: list[FileIssue] = field(default_factory=list)
    # Paths (files or folders) that could not be looked at: their documents are kept, never removed.
    unreadable: list[str] = field(default_factory=list)

    def source(self, path: Path) -> str:
        """The name people see in citations: the path relative to the ingested folder."""
        if path == self.root:
            return path.name
        return path.relative_to(self.root).as_posix()

    def covers(self, path: str) -> bool:
        """Whether a document stored under `path` belongs to what this scan looked at."""
        return _under(path, str(self.root)) and not any(_under(path, p) for p in self.unreadable)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan(root: Path) -> Scan:
    absolute = Path(os.path.abspath(root))
    if not absolute.exists():
        if absolute.is_symlink():
            raise InputFileError(str(root), "is a broken symbolic link; point it at a file or folder")
        raise InputFileError(str(root), "does not exist; pass an existing file or folder")
    result = Scan(absolute)
    if absolute.is_file():
        result.files.append(absolute)
        return result
    if not absolute.is_dir():
        raise InputFileError(str(root), "is neither a file nor a folder")

    seen_dirs: set[tuple[int, int]] = set()
    seen_files: dict[tuple[int, int], Path] = {}

    def unreadable(error: OSError) -> None:
        where = Path(error.filename) if error.filename else absolute
        result.unreadable.append(str(where))
        result.issues.append(FileIssue(result.source(where), f"folder cannot be read ({error.strerror or error})"))

    for folder, dirs, names in os.walk(absolute, followlinks=True, onerror=unreadable):
        here = Path(folder)
        stat = here.stat()
        if (stat.st_dev, stat.st_ino) in seen_dirs:
            result.issues.append(
                FileIssue(result.source(here), "symbolic link loop (folder already visited); not followed")
            )
            dirs[:] = []
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = here / name
            try:
                file_stat = path.stat()
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    reason = "symbolic link loop"
                elif path.is_symlink():
                    reason = "broken symbolic link"
                else:
                    reason = f"cannot be read ({exc.strerror or exc})"
                result.issues.append(FileIssue(result.source(path), reason))
                result.unreadable.append(str(path))
                continue
            key = (file_stat.st_dev, file_stat.st_ino)
            if key in seen_files:
                result.issues.append(
                    FileIssue(result.source(path), f"same file as {result.source(seen_files[key])}; indexed once")
                )
                continue
            seen_files[key] = path
            if os.path.isfile(path):
                result.files.append(path)
    return result
