"""`assistant ask | chat`: one question, or a conversation in the terminal.

Both run the same turn as `Assistant.stream`; the reply's sources, route and reason are
printed under the answer. Every `ask` is a new session unless `--session` or
`--continue` says otherwise; `chat` resumes the user's latest session unless `--new` or
`--session` says otherwise (the loop itself is cli.repl). Without `-c`, a resumed session
goes on in the collection its last answer came from. `ask` starts loading the models as
soon as the Assistant is built, so that they load while the session is looked up (in
`chat` the first question starts them); `--profile` prints where the time went
(cli.profile). Errors become exit codes in cli.support.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from assistant.cli.profile import print_profile, since_start_ms
from assistant.cli.repl import Chat
from assistant.cli.session_ids import latest_session_id, new_session_id, session_collection
from assistant.cli.support import F, assistant_from, errors_to_exit
from assistant.cli.turn_display import StatusLine, print_reply, show_turn

if TYPE_CHECKING:
    from chains.route import RequestedRoute

__all__ = ["ask", "chat", "turn_options"]


_turn_options = [
    click.option("--collection", "-c", help="Collection to answer from."),
    click.option("--user", "user_id", default="default", show_default=True, help="Whose conversation this is."),
    click.option(
        "--route",
        type=click.Choice(["auto", "local", "large"]),
        default="auto",
        show_default=True,
        help="auto: the router decides from the evidence; local: never the large model; large: always it.",
    ),
]


profile_option = click.option(
    "--profile", is_flag=True, help="After the answer, print on stderr how long each stage of the turn took."
)


def turn_options(func: F) -> F:
    for option in reversed(_turn_options):
        func = option(func)
    return func


@click.command()
@click.argument("question")
@turn_options
@click.option("--session", "session_id", help="Ask within this session. Default: a new session for every ask.")
@click.option(
    "--continue",
    "continue_latest",
    is_flag=True,
    help="Ask within your latest session, as a follow-up (no short form: -c is --collection).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole reply as JSON, with its session id.")
@profile_option
@click.pass_context
@errors_to_exit
def ask(
    ctx: click.Context,
    question: str,
    collection: str | None,
    user_id: str,
    route: RequestedRoute,
    session_id: str | None,
    continue_latest: bool,
    as_json: bool,
    profile: bool,
) -> None:
    """Ask one question, in a new session unless --session or --continue is given."""
    if session_id is not None and continue_latest:
        raise click.UsageError("--session and --continue both pick the session: give one of them.")
    bot = assistant_from(ctx)
    load = bot.preload()  # the models load while the session is looked up
    if continue_latest:
        session_id = latest_session_id(bot, user_id)
        if session_id is None:
            click.secho(f"User {user_id!r} has no session yet: starting a new one.", dim=True, err=True)
    if collection is None and session_id is not None:
        collection = session_collection(bot, user_id, session_id)
    session_id = session_id or new_session_id()
    # In a terminal the answer streams, with a status line on stderr until it starts;
    # piped or as JSON, the output is the reply alone.
    live = not as_json and sys.stdout.isatty()
    status = StatusLine(sys.stderr if live and sys.stderr.isatty() else None)
    status.show("searching")
    startup_ms = since_start_ms()
    turn = bot.stream(question, user_id=user_id, session_id=session_id, collection=collection, route=route)
    reply = show_turn(turn, status, stream_text=live)
    if as_json:
        document = {**reply.to_dict(), "user_id": user_id, "session_id": session_id}
        click.echo(json.dumps(document, indent=2, default=str))
    else:
        if live:
            click.echo()
        print_reply(reply, streamed=live)
        click.secho(
            f"  session {session_id} · follow up with --continue, or later with --session {session_id}", dim=True
        )
    if profile:
        print_profile(reply, startup_ms=startup_ms, loads=load.timings if load is not None else None)


@click.command()
@turn_options
@click.option("--session", "session_id", help="Chat in this session. Default: resume your latest one.")
@click.option("--new", "start_new", is_flag=True, help="Start a new session instead of resuming your latest.")
@profile_option
@click.pass_context
@errors_to_exit
def chat(
    ctx: click.Context,
    collection: str | None,
    user_id: str,
    route: RequestedRoute,
    session_id: str | None,
    start_new: bool,
    profile: bool,
) -> None:
    """Chat in the terminal; answers stream as they are generated.

    Resumes your latest session, showing its last turns, in the collection its last answer
    came from unless -c names one. /help lists the commands;
    Ctrl-C cancels an answer; Ctrl-D (or Ctrl-C at an empty prompt) quits."""
    if session_id is not None and start_new:
        raise click.UsageError("--session and --new both pick the session: give one of them.")
    bot = assistant_from(ctx)
    if session_id is None and not start_new:
        session_id = latest_session_id(bot, user_id)
    if collection is None and session_id is not None:
        collection = session_collection(bot, user_id, session_id)
    # Checked before the history is shown: an unknown or unchosen collection fails every question.
    collection = bot.describe_collection(collection).name
    Chat(bot, user_id, session_id or new_session_id(), collection, route, profile=profile).run()
