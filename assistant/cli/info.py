"""`assistant info | init`: where the data lives and what is in it; make a directory a project.

`info` reads settings and the stores' catalogs only: no model is loaded, and nothing
is created where no data is stored yet.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.support import errors_to_exit, settings_from

if TYPE_CHECKING:
    from assistant.settings import Settings

__all__ = ["info", "init"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print it as a JSON object.")
@click.pass_context
@errors_to_exit
def info(ctx: click.Context, as_json: bool) -> None:
    """Where the data lives (and why there), the config file, the database, the collections and the models."""
    from assistant.settings import config_path, data_dir_origin
    from memory.engine import safe_url

    settings = settings_from(ctx)
    config = config_path()
    stored = _stored(settings)
    facts: dict[str, Any] = {
        "version": version("assistant"),
        "data_dir": str(settings.data_dir),
        "data_dir_origin": data_dir_origin(settings, passed=(ctx.find_root().obj or {}).get("data_dir") is not None),
        "data_dir_exists": settings.data_dir.is_dir(),
        "config_file": str(config.resolve()),
        "config_file_exists": config.is_file(),
        "database": safe_url(settings.resolved_database_url),
        "chroma": settings.chroma_url or str(settings.data_dir / "chroma"),
        "collections": _collections(settings) if stored else [],
        "local_model": _local_model(settings),
        "local_model_bundled": not (settings.llm_base_url or settings.llm_model_path),
        "embedder": settings.embedder_spec.name
        + ("" if settings.embedding_model is None else f" ({settings.embedding_model})"),
        "large_model": f"{settings.fallback_model} at {settings.fallback_base_url}"
        if settings.fallback_base_url
        else None,
        "ocr": _ocr(settings),
    }
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    created = "" if facts["data_dir_exists"] else " (not created yet)"
    lines = [
        ("version", facts["version"]),
        ("data dir", f"{facts['data_dir']}{created}"),
        ("", facts["data_dir_origin"]),
        ("config file", facts["config_file"] + ("" if facts["config_file_exists"] else " (none; defaults apply)")),
        ("database", facts["database"]),
        ("chroma", facts["chroma"] if settings.chroma_url else f"{facts['chroma']} (embedded)"),
        ("collections", _collection_list(facts["collections"])),
        ("local model", facts["local_model"] + (" (bundled)" if facts["local_model_bundled"] else "")),
        ("embedder", facts["embedder"]),
        ("large model", facts["large_model"] or "none (set ASSISTANT_FALLBACK_BASE_URL and ASSISTANT_FALLBACK_MODEL)"),
        ("ocr", facts["ocr"]),
    ]
    for label, value in lines:
        click.echo(f"{label:>12}  {value}" if label else f"{'':>12}  ({value})")


def _ocr(settings: Settings) -> str:
    """Whether scanned pages and images will be read, and if not, what to install or set."""
    if not settings.ocr:
        return "off (ASSISTANT_OCR=false): scanned pages and images are reported, not read"
    from retrievers.ocr import ocr_available

    missing = ocr_available(settings.ocr_languages)
    return f"tesseract ({settings.ocr_languages})" if missing is None else f"unavailable: {missing}"


def _stored(settings: Settings) -> bool:
    """Whether there may be collections to list: not when the embedded store was never created."""
    return bool(settings.database_url or settings.chroma_url) or (settings.data_dir / "assistant.db").exists()


def _collections(settings: Settings) -> list[dict[str, Any]]:
    from assistant.core import build_assistant

    bot = build_assistant(settings)
    rows = []
    for name in bot.collections():
        described = bot.describe_collection(name)
        rows.append({"name": name, "documents": described.documents, "chunks": described.chunks})
    return rows


def _collection_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "none yet (assistant ingest PATH --collection NAME)"
    return ", ".join(f"{row['name']} ({row['documents']} documents, {row['chunks']} chunks)" for row in rows)


def _local_model(settings: Settings) -> str:
    if settings.llm_base_url:
        return f"{settings.llm_model} at {settings.llm_base_url}"
    if settings.llm_model_path:
        return str(settings.llm_model_path)
    from assistant.llamacpp import bundled_gguf_path

    return str(bundled_gguf_path())


@click.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
def init(directory: Path) -> None:
    """Make DIRECTORY (default: this one) a project: its state is kept in DIRECTORY/.assistant/.

    Commands run in it or below it use that state, the way git finds .git; assistant.toml beside it is
    its config file. Elsewhere the user data directory is used."""
    from assistant.locations import init_project

    target, created = init_project(directory)
    click.echo(f"{'created' if created else 'already a project:'} {target}")
    if created:
        click.echo(f"commands run in {target.parent} or below it now keep their data there", err=True)
