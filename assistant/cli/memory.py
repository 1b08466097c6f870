"""`assistant sessions | memory | users | escalations | db`: conversations, what users told us,
what was sent to the large model, the schema.

These commands open only the memory database: no model or vector store is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.support import errors_to_exit, json_option, memory_from, print_rows, settings_from, yes_option
from assistant.errors import InvalidInputError, UnknownSessionError

if TYPE_CHECKING:
    from memory.store import SQLMemory

__all__ = ["db", "escalations", "memory", "sessions", "users"]

_user_option = click.option("--user", "user_id", default="default", show_default=True, help="Whose data.")
_owner_option = click.option("--user", "user_id", help="Whose session (default: whichever user has one with this id).")


def _owner(store: SQLMemory, session_id: str, user_id: str | None) -> str:
    """The user whose session this is: the one given, else the only one holding a session with this id."""
    if user_id is not None:
        return user_id
    owners = store.session_owners(session_id)
    if len(owners) == 1:
        return owners[0]
    if owners:
        raise InvalidInputError(
            f"session {session_id!r}",
            f"is a session of several users ({', '.join(owners)})",
            f"Pick one with --user, e.g. --user {owners[0]}.",
        )
    raise UnknownSessionError(None, session_id, known_sessions=store.session_ids())


def _existing_user(store: SQLMemory, user_id: str) -> None:
    known = store.users()
    if user_id not in known:
        raise UnknownSessionError(user_id, known_users=known)


@click.group()
def sessions() -> None:
    """List, show, export, import and delete conversations."""


@sessions.command("list")
@click.option("--user", "user_id", help="Only this user's sessions.")
@json_option
@click.pass_context
@errors_to_exit
def sessions_list(ctx: click.Context, user_id: str | None, as_json: bool) -> None:
    """Conversations, most recently active first."""
    rows = [
        {
            "user": info.user_id,
            "session": info.session_id,
            "messages": info.message_count,
            "updated": info.updated_at,
            "created": info.created_at,
            "title": info.title if as_json else info.title[:60],
        }
        for info in memory_from(ctx).sessions(user_id)
    ]
    empty = f"no sessions of user {user_id!r} yet" if user_id else "no sessions yet"
    print_rows(rows, ["user", "session", "messages", "updated", "title"], as_json=as_json, empty=empty)


@sessions.command("show")
@click.argument("session_id")
@_owner_option
@click.option("--summaries", is_flag=True, help="Also show the rolling summaries written so far.")
@click.pass_context
@errors_to_exit
def sessions_show(ctx: click.Context, session_id: str, user_id: str | None, summaries: bool) -> None:
    """The whole history of a session, as stored (every message, not only what prompts see)."""
    store = memory_from(ctx)
    user_id = _owner(store, session_id, user_id)
    for message in store.messages(user_id, session_id):
        route = f" [{message.route}]" if message.route else ""
        click.echo(f"{message.seq:>4} {message.role}{route}: {message.content}")
    if summaries:
        for summary in store.summaries(user_id, session_id):
            click.secho(f"summary through message {summary.through_seq} ({summary.model}): {summary.content}", dim=True)


@sessions.command("export")
@click.argument("session_id")
@_owner_option
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to this file (default: stdout).")
@click.pass_context
@errors_to_exit
def sessions_export(ctx: click.Context, session_id: str, user_id: str | None, output: Path | None) -> None:
    """A session as JSON: every message with its route, sources and times, and its summaries."""
    from memory.transfer import export_session

    store = memory_from(ctx)
    user_id = _owner(store, session_id, user_id)
    text = json.dumps(export_session(store, user_id, session_id), indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"exported session {session_id!r} of user {user_id!r} to {output}", err=True)


@sessions.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--user", "user_id", help="Import for this user (default: the one in the file).")
@click.option("--session", "session_id", help="Import under this session id (default: the one in the file).")
@click.pass_context
@errors_to_exit
def sessions_import(ctx: click.Context, file: Path, user_id: str | None, session_id: str | None) -> None:
    """Store a session exported by `sessions export` (all of it, or nothing if the file is wrong)."""
    from assistant.errors import InvalidInputError
    from memory.transfer import import_session

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            str(file), f"is not a JSON file ({exc})", "Pass a file written by sessions export."
        ) from None
    user, session = import_session(memory_from(ctx), document, user_id=user_id, session_id=session_id, origin=str(file))
    click.echo(f"imported session {session!r} of user {user!r}")


@sessions.command("delete")
@click.argument("session_id")
@_owner_option
@click.pass_context
@errors_to_exit
def sessions_delete(ctx: click.Context, session_id: str, user_id: str | None) -> None:
    store = memory_from(ctx)
    user_id = _owner(store, session_id, user_id)
    store.delete_session(user_id, session_id)
    click.echo(f"deleted session {session_id!r} of user {user_id!r}")


@click.group()
def memory() -> None:
    """What users told the assistant about themselves: list, add, edit, forget."""


@memory.command("list")
@_user_option
@json_option
@click.pass_context
@errors_to_exit
def memory_list(ctx: click.Context, user_id: str, as_json: bool) -> None:
    """Facts and preferences remembered about a user, most recent first, with where each was said."""
    store = memory_from(ctx)
    _existing_user(store, user_id)
    rows = [
        {**fact.__dict__, "said": f"{fact.session_id}: {fact.quote}" if fact.quote else None}
        for fact in store.facts.list(user_id)
    ]
    if as_json:
        for row in rows:
            del row["said"]
    print_rows(rows, ["id", "kind", "content", "said"], as_json=as_json, empty=f"nothing remembered about {user_id!r}")


@memory.command("add")
@click.argument("text")
@_user_option
@click.option("--preference", is_flag=True, help='How to answer ("answer briefly"), rather than a fact.')
@click.pass_context
@errors_to_exit
def memory_add(ctx: click.Context, text: str, user_id: str, preference: bool) -> None:
    fact = memory_from(ctx).facts.add(user_id, "preference" if preference else "fact", text)
    click.echo(f"{fact.id}: {fact.content}")


@memory.command("edit")
@click.argument("fact_id", type=int)
@click.argument("text")
@_user_option
@click.pass_context
@errors_to_exit
def memory_edit(ctx: click.Context, fact_id: int, text: str, user_id: str) -> None:
    fact = memory_from(ctx).facts.edit(user_id, fact_id, text)
    click.echo(f"{fact.id}: {fact.content}")


@memory.command("forget")
@click.argument("fact_id", type=int, required=False)
@_user_option
@click.option("--all", "forget_all", is_flag=True, help="Forget everything remembered about the user.")
@click.pass_context
@errors_to_exit
def memory_forget(ctx: click.Context, fact_id: int | None, user_id: str, forget_all: bool) -> None:
    """Forget one fact (by the id `memory list` shows), or --all of them."""
    store = memory_from(ctx).facts
    if forget_all == (fact_id is not None):
        raise click.UsageError("give either a FACT_ID or --all")
    if fact_id is not None:
        store.forget(user_id, fact_id)
        click.echo(f"forgot fact {fact_id} of user {user_id!r}")
    else:
        click.echo(f"forgot {store.forget_all(user_id)} facts of user {user_id!r}")


@click.group()
def users() -> None:
    """List users, or delete one with everything of theirs."""


@users.command("list")
@json_option
@click.pass_context
@errors_to_exit
def users_list(ctx: click.Context, as_json: bool) -> None:
    """Every user with something stored, with their sessions and when they were last active."""
    store = memory_from(ctx)
    rows: dict[str, dict[str, Any]] = {
        name: {"user": name, "sessions": 0, "last_active": None} for name in store.users()
    }
    for info in store.sessions():  # most recent first
        row = rows[info.user_id]
        row["sessions"] += 1
        row["last_active"] = row["last_active"] or info.updated_at
    print_rows(list(rows.values()), ["user", "sessions", "last_active"], as_json=as_json, empty="no users yet")


@users.command("delete")
@click.argument("user_id")
@yes_option
@click.pass_context
@errors_to_exit
def users_delete(ctx: click.Context, user_id: str, yes: bool) -> None:
    """Delete a user's sessions, messages, summaries and facts."""
    store = memory_from(ctx)
    _existing_user(store, user_id)
    if not yes:
        click.confirm(f"delete user {user_id!r} and all their sessions and facts?", abort=True)
    gone = store.delete_user(user_id)
    click.echo(f"deleted user {user_id!r}: {gone.sessions} sessions, {gone.messages} messages, {gone.facts} facts")


@click.group()
def db() -> None:
    """The database schema (Alembic migrations): where it stands, and upgrading it."""


@db.command("current")
@click.pass_context
@errors_to_exit
def db_current(ctx: click.Context) -> None:
    from memory.engine import create_memory_engine, safe_url
    from memory.migrate import current_revision, head_revision

    url = settings_from(ctx).resolved_database_url
    current = current_revision(create_memory_engine(url))
    state = "up to date" if current == head_revision() else f"behind; newest is {head_revision()}"
    click.echo(f"{safe_url(url)}: revision {current or 'none (empty database)'} ({state})")


@db.command("upgrade")
@click.pass_context
@errors_to_exit
def db_upgrade(ctx: click.Context) -> None:
    from memory.engine import create_memory_engine, safe_url
    from memory.migrate import upgrade

    url = settings_from(ctx).resolved_database_url
    click.echo(f"{safe_url(url)}: at revision {upgrade(create_memory_engine(url))}")


@click.command()
@click.option("--user", "user_id", help="Only this user's calls.")
@click.option("--session", "session_id", help="Only this session's calls.")
@click.option("--limit", default=20, show_default=True, help="Most recent calls shown.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array with every field, including exactly what was sent.")
@click.pass_context
@errors_to_exit
def escalations(ctx: click.Context, user_id: str | None, session_id: str | None, limit: int, as_json: bool) -> None:
    """The large-model audit: what was sent, where, when, why, and at what cost."""
    from dataclasses import asdict

    records = memory_from(ctx).escalations.list(user_id=user_id, session_id=session_id, limit=limit)
    rows = [
        {
            **asdict(r),
            "who": f"{r.user_id or '(deleted)'}/{r.session_id or '-'}",
            "tokens": f"{r.prompt_tokens}+{r.completion_tokens}",
        }
        for r in records
    ]
    if as_json:
        for row in rows:
            del row["who"], row["tokens"]
    scope = " of " + " ".join(
        f"{what} {value!r}" for what, value in (("user", user_id), ("session", session_id)) if value
    )
    print_rows(
        rows,
        ["created_at", "who", "status", "attempts", "tokens", "model", "reason", "error"],
        as_json=as_json,
        empty=f"no escalations{scope if user_id or session_id else ''} yet: nothing was sent to a large model",
    )
