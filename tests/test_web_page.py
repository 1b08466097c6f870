"""The web chat page in headless Chromium (Debian's `chromium`, driven by Playwright):
ask about the sample documents, watch the answer stream in with its citation and
route, open the cited passage, reload, and find the session again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from assistant import Assistant
from assistant.settings import ServerSettings
from tests.conftest import unavailable
from tests.test_server import start

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_ask_see_the_streamed_answer_and_citation_reload_and_find_the_session(bot: Assistant, browser: object) -> None:
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000))
    key = bot.memory.keys.create("web-user").secret
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.fill("#key", key)
        page.dispatch_event("#key", "change")
        page.wait_for_selector("#collection option[value='handbook']", state="attached")
        page.select_option("#collection", "handbook")
        page.fill("#question", "How long is the warranty of the X200?")
        page.click("#send")
        page.wait_for_selector(".turn .cite", timeout=120_000)
        answer = page.inner_text(".turn .a")
        assert "24" in answer and "month" in answer
        assert page.inner_text(".turn .route") == "local"
        cite = page.locator(".turn .cite").first
        assert "x200_manual.md" in cite.inner_text()
        cite.click()
        assert "warranty" in page.inner_text(".turn .passage").lower()
        session = page.evaluate("localStorage.getItem('assistant.session')")

        page.reload()
        page.wait_for_selector(f"#sessions li[data-session='{session}']")
        page.wait_for_selector(".turn .a")
        assert "24" in page.inner_text(".turn .a")  # the session reopened with its history
        assert "x200_manual.md" in page.inner_text(".turn .cites")
        assert bot.history("web-user", session)[0].content == "How long is the warranty of the X200?"
        assert not errors, errors
    finally:
        server.should_exit = True
        thread.join(timeout=10)
