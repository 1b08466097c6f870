"""Where state and the config file live when no setting says: a project, or the user's data directory.

A project is the nearest directory, from the working directory up, that holds `.assistant/`
(the way git finds `.git`; `assistant init` makes one); its state is that folder and its
config file the `assistant.toml` beside it. Outside any project, state goes to the user
data directory (XDG: `$XDG_DATA_HOME/assistant`, by default `~/.local/share/assistant`).
Only finds paths: settings.py reads the environment and decides. Imports nothing from the project.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

__all__ = ["CONFIG_FILE", "PROJECT_DIR", "find_project", "init_project", "project_config", "user_data_dir"]

PROJECT_DIR = ".assistant"
CONFIG_FILE = "assistant.toml"


def find_project(start: Path | None = None) -> Path | None:
    """The `.assistant/` folder of the nearest directory from `start` (default: the working directory) up."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_DIR).is_dir():
            return folder / PROJECT_DIR
    return None


def project_config(start: Path | None = None) -> Path:
    """The config file: `assistant.toml` beside the project's `.assistant/`, else in the working directory."""
    project = find_project(start)
    return (project.parent if project else (start or Path.cwd())) / CONFIG_FILE


def user_data_dir() -> Path:
    return platformdirs.user_data_path("assistant", appauthor=False)


def init_project(folder: Path) -> tuple[Path, bool]:
    """Make `folder` a project (its `.assistant/`); returns that path and whether it was new."""
    target = folder.resolve() / PROJECT_DIR
    existed = target.is_dir()
    target.mkdir(parents=True, exist_ok=True)
    return target, not existed
