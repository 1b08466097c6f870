"""The curl examples of the HTTP API docs (docs/http-api.md), run as written against a live server."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from assistant import Assistant
from assistant.settings import ServerSettings
from retrievers.naming import shown_name
from tests.conftest import ROOT
from tests.test_server import start

pytestmark = pytest.mark.llm

MARKER = "<!-- curl-examples"


def docs_curl_block() -> str:
    text = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    return re.search(r"```bash\n(.*?)```", after, re.DOTALL).group(1)  # type: ignore[union-attr]


def test_the_readme_curl_examples_work(bot: Assistant) -> None:
    block = docs_curl_block()
    first, rest = block.split("\n", 1)
    assert first.startswith("export ASSISTANT_URL=")  # the placeholder line; the test sets both instead
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000))
    try:
        env = {**os.environ, "ASSISTANT_URL": url, "ASSISTANT_KEY": bot.memory.keys.create("curl-user").secret}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", rest], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert '"id":"handbook"' in out.replace(" ", "")  # models
        assert '"route":"local"' in out.replace(" ", "")  # the plain completion
        assert "chat.completion.chunk" in out and "data: [DONE]" in out  # the stream
        assert '"owner":"curl-user"' in out.replace(" ", "")  # the private collection
        assert re.search(r'"status":\s*"(queued|running|done)"', out)  # the upload's job
        assert [m.content for m in bot.history("curl-user", "s1")][::2] == [
            "How long is the X200 warranty?",
            "What does error E17 mean?",
        ]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for name in bot.collections(visible_to="curl-user"):
            if shown_name(name) == "my-notes":  # a private collection is stored under its owner's scoped name
                bot.delete_collection(name)
