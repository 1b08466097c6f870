"""`assistant ask | chat`: one question, or a conversation in the terminal.

Both run the same turn as `Assistant.ask`; the reply's sources, route and reason are
printed under the answer. Errors become exit codes in cli.support.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.support import F, assistant_from, errors_to_exit
from assistant.errors import UserError

if TYPE_CHECKING:
    from chains.route import RequestedRoute

__all__ = ["ask", "chat", "turn_options"]


def _print_reply(reply: Any, streamed: bool) -> None:
    if not streamed:
        click.echo(reply.answer)
    click.echo()
    for number, source in enumerate(reply.sources, start=1):
        click.secho(f"  [{number}] {source.citation}  (score {source.score:.2f})", dim=True)
    flag = " · low confidence" if reply.low_confidence else ""
    who = f" by {reply.model}" if reply.model else ""
    click.secho(f"  route: {reply.route}{who}{flag} — {reply.reason}", dim=True)


_turn_options = [
    click.option("--collection", "-c", help="Collection to answer from."),
    click.option("--user", "user_id", default="default", show_default=True, help="Whose conversation this is."),
    click.option("--session", "session_id", default="default", show_default=True, help="Conversation id."),
    click.option(
        "--route",
        type=click.Choice(["auto", "local", "large"]),
        default="auto",
        show_default=True,
        help="auto: the router decides from the evidence; local: never the large model; large: always it.",
    ),
]


def turn_options(func: F) -> F:
    for option in reversed(_turn_options):
        func = option(func)
    return func


@click.command()
@click.argument("question")
@turn_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole reply as JSON.")
@click.pass_context
@errors_to_exit
def ask(
    ctx: click.Context,
    question: str,
    collection: str | None,
    user_id: str,
    session_id: str,
    route: RequestedRoute,
    as_json: bool,
) -> None:
    """Ask one question."""
    bot = assistant_from(ctx)
    reply = bot.ask(question, user_id=user_id, session_id=session_id, collection=collection, route=route)
    if as_json:
        click.echo(json.dumps(reply.to_dict(), indent=2, default=str))
    else:
        _print_reply(reply, streamed=False)


@click.command()
@turn_options
@click.pass_context
@errors_to_exit
def chat(ctx: click.Context, collection: str | None, user_id: str, session_id: str, route: RequestedRoute) -> None:
    """Chat in the terminal; answers stream as they are generated. Ctrl-D quits."""
    bot = assistant_from(ctx)
    click.secho("Ask about your documents (Ctrl-D to quit).", dim=True)
    while True:
        try:
            question = click.prompt("you", prompt_suffix="> ")
        except (EOFError, click.Abort):
            click.echo()
            return
        try:
            click.echo("assistant> ", nl=False)
            turn = bot.stream(question, user_id=user_id, session_id=session_id, collection=collection, route=route)
            for chunk in turn:
                click.echo(chunk.text, nl=False)
                if chunk.reply is not None:
                    click.echo()
                    _print_reply(chunk.reply, streamed=True)
        except UserError as exc:
            click.secho(f"\nerror: {exc}", fg="red", err=True)
