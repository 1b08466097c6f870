"""`assistant serve` and `assistant keys ...`: the HTTP API and who may call it.

`serve` needs the server extra (`assistant[server]`) and says so when it is missing; it
logs where it listens and one access line per request on stderr, and stops with exit
code 0 on Ctrl-C or SIGTERM (assistant.server.run).
`keys` open only the memory database. Commands here act on the machine, not over
HTTP: they are not bound by key roles."""

from __future__ import annotations

import json

import click

from assistant.cli.support import assistant_from, errors_to_exit, json_option, memory_from, print_rows, settings_from
from assistant.extras import require_extra

__all__ = ["keys", "serve"]


@click.command()
@click.option("--host", help="Address to listen on (default: the server_host setting, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: the server_port setting, 8000).")
@click.pass_context
@errors_to_exit
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the OpenAI-compatible API, the native endpoints and the web chat page."""
    require_extra("server", "`assistant serve`")
    from assistant.server import create_app
    from assistant.server.run import serve as run

    settings = settings_from(ctx).server
    app = create_app(assistant_from(ctx), settings)
    run(app, host or settings.server_host, settings.server_port if port is None else port)


@click.group()
def keys() -> None:
    """API keys of the HTTP server: each acts as one user."""


@keys.command("create")
@click.option("--user", "user_id", required=True, help="The user the key acts as.")
@click.option("--name", default="", help="A label, e.g. the app that will use the key.")
@click.option(
    "--role",
    type=click.Choice(["user", "admin"]),  # memory.keys.ROLES, not imported: the CLI starts fast
    default="user",
    show_default=True,
    help="user: reads what its user sees, writes its user's collections; admin: also writes every shared one.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@errors_to_exit
def keys_create(ctx: click.Context, user_id: str, name: str, role: str, as_json: bool) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    issued = memory_from(ctx).keys.create(user_id, name, role)
    if as_json:
        click.echo(json.dumps({"id": issued.info.id, "user": user_id, "role": role, "key": issued.secret}))
    else:
        click.echo(issued.secret)
        click.echo(f"{role} key {issued.info.id} for user {user_id}: store it now, it is not shown again", err=True)


@keys.command("list")
@click.option("--user", "user_id", help="Only this user's keys.")
@json_option
@click.pass_context
@errors_to_exit
def keys_list(ctx: click.Context, user_id: str | None, as_json: bool) -> None:
    """The keys (never the secrets: only their first characters), live and revoked."""
    rows = [
        {
            "id": key.id,
            "user": key.user_id,
            "role": key.role,
            "prefix": key.prefix,
            "name": key.name,
            "state": "revoked" if key.revoked_at else "live",
            "created": key.created_at,
            "revoked": key.revoked_at,
        }
        for key in memory_from(ctx).keys.list(user_id)
    ]
    empty = f"no keys for user {user_id!r}" if user_id else "no keys yet; create one: assistant keys create --user NAME"
    print_rows(rows, ["id", "user", "role", "prefix", "name", "state", "created"], as_json=as_json, empty=empty)


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
@errors_to_exit
def keys_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke a key: requests with it get 401 from the next one on, on every replica."""
    if not memory_from(ctx).keys.revoke(key_id):
        raise click.UsageError(f"no live key {key_id}; see: assistant keys list")
    click.echo(f"revoked key {key_id}")
