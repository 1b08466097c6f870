"""The demo: index the sample handbook, hold a short scripted conversation, then chat.

Shows an answer with citations, a follow-up answered through memory, a question the
documents cannot answer, and for every turn which model answered and why. In a
terminal it then opens an interactive chat; without one it exits.

    python examples/demo.py            # state in the data directory: see `assistant info`
"""

from __future__ import annotations

import sys
from pathlib import Path

from assistant import Assistant, AssistantError, Reply

HANDBOOK = Path(__file__).resolve().parents[1] / "data" / "handbook"
SCRIPT = [
    "How often is the X200 serviced?",
    "And what about its warranty?",
    "What is the hotel limit per night in Paris?",
    "Who won the football World Cup in 2022?",
]


def show(reply: Reply) -> None:
    for number, source in enumerate(reply.sources, start=1):
        print(f"    [{number}] {source.citation} (score {source.score:.2f})")
    who = f"{reply.model}" if reply.model else "no model"
    flag = ", low confidence" if reply.low_confidence else ""
    print(f"    route: {reply.route} ({who}{flag}) — {reply.reason}")
    print(f"    {reply.timings.get('total_ms', 0) / 1000:.1f}s, {reply.usage.get('completion_tokens', 0)} tokens")


def turn(bot: Assistant, question: str, session: str) -> None:
    print(f"\nyou> {question}")
    print("assistant> ", end="", flush=True)
    for chunk in bot.stream(question, user_id="demo", session_id=session, collection="handbook"):
        print(chunk.text, end="", flush=True)
        if chunk.reply is not None:
            print()
            if chunk.reply.standalone_question != question:
                print(f"    (understood as: {chunk.reply.standalone_question})")
            show(chunk.reply)


def main() -> int:
    bot = Assistant.from_settings()
    report = bot.ingest(HANDBOOK, collection="handbook")
    print(f"Indexed the sample handbook: {report.summary()}")
    session = "demo"
    if any(s.session_id == session for s in bot.sessions("demo")):
        bot.delete_session("demo", session)  # a fresh scripted conversation on every run
    for question in SCRIPT:
        turn(bot, question, session)
    if not sys.stdin.isatty():
        return 0
    print("\nYour turn: ask about the handbook (Ctrl-D to quit).")
    while True:
        try:
            question = input("\nyou> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        try:
            turn(bot, question, session)
        except AssistantError as exc:
            print(f"error: {exc}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
