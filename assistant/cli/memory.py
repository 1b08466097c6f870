"""`assistant sessions | memory | users | escalations | db`: conversations, what users told us,
what was sent to the large model, the schema.

These commands open only the memory database: no model or vector store is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.cli.support import errors_to_exit, memory_from, settings_from, yes_option

__all__ = ["db", "escalations", "memory", "sessions", "users"]

_user_option = click.option("--user", "user_id", default="default", show_default=True, help="Whose data.")


@click.group()
def sessions() -> None:
    """List, show, export, import and delete conversations."""


@sessions.command("list")
@click.option("--user", "user_id", help="Only this user's sessions.")
@click.pass_context
@errors_to_exit
def sessions_list(ctx: click.Context, user_id: str | None) -> None:
    for info in memory_from(ctx).sessions(user_id):
        click.echo(
            f"{info.user_id}\t{info.session_id}\t{info.message_count} messages\t"
            f"{info.updated_at:%Y-%m-%d %H:%M}\t{info.title[:60]}"
        )


@sessions.command("show")
@click.argument("session_id")
@_user_option
@click.option("--summaries", is_flag=True, help="Also show the rolling summaries written so far.")
@click.pass_context
@errors_to_exit
def sessions_show(ctx: click.Context, session_id: str, user_id: str, summaries: bool) -> None:
    """The whole history of a session, as stored (every message, not only what prompts see)."""
    store = memory_from(ctx)
    for message in store.messages(user_id, session_id):
        route = f" [{message.route}]" if message.route else ""
        click.echo(f"{message.seq:>4} {message.role}{route}: {message.content}")
    if summaries:
        for summary in store.summaries(user_id, session_id):
            click.secho(f"summary through message {summary.through_seq} ({summary.model}): {summary.content}", dim=True)


@sessions.command("export")
@click.argument("session_id")
@_user_option
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to this file (default: stdout).")
@click.pass_context
@errors_to_exit
def sessions_export(ctx: click.Context, session_id: str, user_id: str, output: Path | None) -> None:
    """A session as JSON: every message with its route, sources and times, and its summaries."""
    from memory.transfer import export_session

    text = json.dumps(export_session(memory_from(ctx), user_id, session_id), indent=2, ensure_ascii=False)
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
@_user_option
@click.pass_context
@errors_to_exit
def sessions_delete(ctx: click.Context, session_id: str, user_id: str) -> None:
    memory_from(ctx).delete_session(user_id, session_id)
    click.echo(f"deleted session {session_id!r} of user {user_id!r}")


@click.group()
def memory() -> None:
    """What users told the assistant about themselves: list, add, edit, forget."""


@memory.command("list")
@_user_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@errors_to_exit
def memory_list(ctx: click.Context, user_id: str, as_json: bool) -> None:
    facts = memory_from(ctx).facts.list(user_id)
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in facts], indent=2, default=str, ensure_ascii=False))
        return
    if not facts:
        click.echo(f"nothing remembered about {user_id!r}")
    for fact in facts:
        origin = f"  (from session {fact.session_id!r}: “{fact.quote[:80]}”)" if fact.quote else ""
        click.echo(f"{fact.id:>5}  {fact.kind:<10}  {fact.content}")
        if origin:
            click.secho(f"       {origin.strip()}", dim=True)


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
@click.pass_context
@errors_to_exit
def users_list(ctx: click.Context) -> None:
    for name in memory_from(ctx).users():
        click.echo(name)


@users.command("delete")
@click.argument("user_id")
@yes_option
@click.pass_context
@errors_to_exit
def users_delete(ctx: click.Context, user_id: str, yes: bool) -> None:
    """Delete a user's sessions, messages, summaries and facts."""
    store = memory_from(ctx)
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
@click.option("--json", "as_json", is_flag=True, help="Every field, including exactly what was sent.")
@click.pass_context
@errors_to_exit
def escalations(ctx: click.Context, user_id: str | None, session_id: str | None, limit: int, as_json: bool) -> None:
    """The large-model audit: what was sent, where, when, why, and at what cost."""
    from dataclasses import asdict

    records = memory_from(ctx).escalations.list(user_id=user_id, session_id=session_id, limit=limit)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in records], indent=2, default=str, ensure_ascii=False))
        return
    for r in records:
        who = f"{r.user_id or '(deleted)'}/{r.session_id or '-'}"
        click.echo(
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {who}  {r.status} after {r.attempts} attempt(s)  "
            f"{r.prompt_tokens}+{r.completion_tokens} tokens  {r.model} at {r.endpoint}"
        )
        click.secho(f"    why: {r.reason}" + (f"\n    error: {r.error}" if r.error else ""), dim=True)
