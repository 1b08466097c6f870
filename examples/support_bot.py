"""A support bot over your team's folder, in a few lines of the public API.

    python examples/support_bot.py ~/team-docs --collection support --user alice
    python examples/support_bot.py ~/team-docs --ask "How do I reset a password?"

Re-running it re-indexes only what changed. What the user says about themselves
("I run the billing database", "answer briefly") is remembered across sessions;
type "/memory" to see it, "/forget" to clear it. Set ASSISTANT_FALLBACK_BASE_URL
and ASSISTANT_FALLBACK_MODEL to let hard questions go to a large model.
"""

from __future__ import annotations

import argparse
import sys

from assistant import Assistant, AssistantError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder of documents (txt, md, html, pdf)")
    parser.add_argument("--collection", default="support")
    parser.add_argument("--user", default="support-agent")
    parser.add_argument("--session", default="desk")
    parser.add_argument("--ask", help="answer one question and exit")
    args = parser.parse_args()

    bot = Assistant.from_settings()
    report = bot.ingest(args.folder, collection=args.collection)
    print(report.summary())
    for issue in report.files_failed:
        print(f"  not indexed: {issue.path}: {issue.reason}")

    questions = [args.ask] if args.ask else iter(lambda: input("\nquestion> "), None)
    try:
        for question in questions:
            if question.strip() == "/memory":
                for fact in bot.facts(args.user) if args.user in bot.users() else []:
                    print(f"  {fact.id}: {fact.content}")
                continue
            if question.strip() == "/forget":
                print(f"  forgot {bot.forget(args.user) if args.user in bot.users() else 0} facts")
                continue
            reply = bot.ask(question, user_id=args.user, session_id=args.session, collection=args.collection)
            print(reply.answer)
            for source in reply.sources[:3]:
                print(f"  - {source.citation}")
            print(f"  ({reply.route}: {reply.reason})")
            for fact in reply.remembered:
                print(f"  remembered: {fact}")
    except EOFError:
        pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
