"""Walk a folder for documents: stable order, hidden entries left out, symlinks
followed once (a loop is reported, not followed forever), each file seen once.

Only regular files are read: a named pipe, socket or device is reported, never
opened (opening a pipe waits for a writer forever). A name that is not UTF-8 is
cited with U+FFFD in place of its odd bytes and recorded with them as \\xNN, since
neither a database nor the tokenizer takes Python's stand-ins for them.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import InputFileError
from retrievers.report import FileIssue

__all__ = ["Scan", "read_file", "scan", "shown_name", "stored_path"]


def _raw(text: str) -> bytes | None:
    """The bytes of a name read from the file system, or None when it is valid UTF-8 text."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")


def stored_path(path: Path | str) -> str:
    """How a path is recorded in the catalog: itself, with bytes that are not UTF-8 as \\xNN."""
    raw = _raw(str(path))
    return str(path) if raw is None else raw.decode("utf-8", "backslashreplace")


def shown_name(name: str) -> str:
    """A name as cited: bytes that are not UTF-8 shown as U+FFFD."""
    raw = _raw(name)
    return name if raw is None else raw.decode("utf-8", "replace")


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, at most `limit` + 1 of them (more means it is over the limit).

    Opened without waiting, so that a file replaced by a named pipe since the scan is
    refused instead of blocking the run."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"it is {_special(mode)}, not a regular file")
        return file.read(limit + 1)


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
            return shown_name(path.name)
        return shown_name(path.relative_to(self.root).as_posix())

    def covers(self, path: str) -> bool:
        """Whether a document stored under `path` (see stored_path) belongs to what this scan looked at."""
        return _under(path, stored_path(self.root)) and not any(_under(path, p) for p in self.unreadable)


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
        kind = _special(absolute.stat().st_mode)
        raise InputFileError(str(root), f"is {kind}, neither a file nor a folder; pass a file or folder")

    seen_dirs: set[tuple[int, int]] = set()
    seen_files: dict[tuple[int, int], Path] = {}

    def unreadable(error: OSError) -> None:
        where = Path(error.filename) if error.filename else absolute
        result.unreadable.append(stored_path(where))
        result.issues.append(FileIssue(result.source(where), f"folder cannot be read ({error.strerror or error})"))

    for folder, dirs, names in os.walk(absolute, followlinks=True, onerror=unreadable):
        here = Path(folder)
        folder_stat = here.stat()
        if (folder_stat.st_dev, folder_stat.st_ino) in seen_dirs:
            result.issues.append(
                FileIssue(result.source(here), "symbolic link loop (folder already visited); not followed")
            )
            dirs[:] = []
            continue
        seen_dirs.add((folder_stat.st_dev, folder_stat.st_ino))
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
                result.unreadable.append(stored_path(path))
                continue
            if not stat.S_ISREG(file_stat.st_mode):
                result.issues.append(
                    FileIssue(result.source(path), f"is {_special(file_stat.st_mode)}, not a regular file; not read")
                )
                continue
            key = (file_stat.st_dev, file_stat.st_ino)
            if key in seen_files:
                result.issues.append(
                    FileIssue(result.source(path), f"same file as {result.source(seen_files[key])}; indexed once")
                )
                continue
            seen_files[key] = path
            result.files.append(path)
    return result
