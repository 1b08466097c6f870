"""`assistant serve` and `assistant keys ...`: the HTTP API and who may call it.

`serve` needs the server extra (`assistant[server]`) and says so when it is missing;
`keys` open only the memory database. Commands here act on the machine, not over
HTTP: they are not bound by key roles."""

from __future__ import annotations

import json
import logging

import click

from assistant.cli.support import assistant_from, errors_to_exit, memory_from, settings_from
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
    import uvicorn

    from assistant.server import create_app

    settings = settings_from(ctx)
    bot = assistant_from(ctx)
    app = create_app(bot, settings.server)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = settings.server
    uvicorn.run(app, host=host or server.server_host, port=port or server.server_port, log_level="warning")


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
@click.pass_context
@errors_to_exit
def keys_list(ctx: click.Context, user_id: str | None) -> None:
    for key in memory_from(ctx).keys.list(user_id):
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
        click.echo(f"{key.id}\t{key.user_id}\t{key.role}\t{key.prefix}…\t{key.name}\t{state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
@errors_to_exit
def keys_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke a key: requests with it get 401 from the next one on, on every replica."""
    if not memory_from(ctx).keys.revoke(key_id):
        raise click.UsageError(f"no live key {key_id}; see: assistant keys list")
    click.echo(f"revoked key {key_id}")
