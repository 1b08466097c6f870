"""The web chat page's own code in headless Chromium, without a server or a model: answers
written by a model (markup included) are shown as text; [n] markers and quoted lines become
citations; the SSE reader takes sse-starlette's \\r\\n framing, split anywhere, and its pings.
The page is the shipped chat.html, served to the browser at a stand-in address."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import pytest

from tests.conftest import unavailable

ADDRESS = "http://page.test/"  # any http origin: the page keeps its key in localStorage

SOURCES = [
    {"file": "x200_manual.md", "location": "Warranty", "snippet": "The X200 comes with a 24-month warranty."},
    {"file": "faq.txt", "location": "", "snippet": "Error E17 means low inlet pressure."},
]


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (skipped locally when it is missing)."""
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    html = resources.files("assistant.server").joinpath("chat.html").read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(ADDRESS, lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"))
    page.goto(ADDRESS)
    page.wait_for_selector("#keyprompt", state="visible")  # no key yet: nothing was fetched
    page.evaluate("document.getElementById('app').hidden = false")
    yield page
    context.close()
    assert not errors, errors


def show(page: Any, text: str, route: str = "large") -> None:
    page.evaluate(
        """([text, route, sources]) => {
            const view = turnView("q");
            view.text = text;
            showMeta(view, { route, reason: "test", sources });
        }""",
        [text, route, SOURCES],
    )


def test_markup_in_an_answer_is_shown_as_text(page: Any) -> None:
    hostile = '<img src=x onerror="window.hacked = 1"> <b>bold</b>\n> “<script>window.hacked = 2</script>” [1]'
    show(page, hostile)
    answer = page.locator(".turn .a")
    assert answer.locator("img, b, script").count() == 0
    assert '<img src=x onerror="window.hacked = 1">' in answer.inner_text()
    assert "<script>window.hacked = 2</script>" in answer.locator("blockquote").inner_text()
    assert page.evaluate("window.hacked") is None


def test_markers_and_quotes_become_citations_that_open_their_passage(page: Any) -> None:
    show(
        page,
        "The warranty lasts 24 months [1]; see also [2] and [7].\n\n"
        "> “The X200 comes with a 24-month warranty.” [1]\n"
        "> “Error E17 means low inlet pressure.” — faq.txt",
    )
    answer = page.locator(".turn .a")
    assert answer.locator("blockquote").count() == 2
    assert "> “" not in answer.inner_text() and "“" not in answer.locator("blockquote").first.inner_text()
    refs = answer.locator(".ref")
    assert refs.all_inner_texts() == ["1", "2", "7", "1", "faq.txt"]
    assert refs.nth(2).is_disabled()  # [7]: no such source

    refs.nth(0).click()
    assert page.inner_text(".turn .passage") == "x200_manual.md › Warranty\nThe X200 comes with a 24-month warranty."
    answer.locator("blockquote .ref").nth(1).click()  # the citation named after the dash
    assert page.inner_text(".turn .passage") == "faq.txt\nError E17 means low inlet pressure."
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")


def test_the_event_reader_takes_crlf_framing_split_anywhere_and_pings(page: Any) -> None:
    pieces = [
        'data: {"a": 1}\r',
        "\n\r\n: ping - 2025-01-01 00:00:00\r\n\r\nda",
        'ta: {"b": "x\\ny"}\r\n\r\ndata: [DONE]\r\n\r\n',
    ]
    got = page.evaluate(
        """async (pieces) => {
            const bytes = new TextEncoder();
            const body = new ReadableStream({
                start(c) { pieces.forEach((p) => c.enqueue(bytes.encode(p))); c.close(); },
            });
            const seen = [];
            for await (const data of events(new Response(body))) seen.push(data);
            return seen;
        }""",
        pieces,
    )
    assert got == ['{"a": 1}', '{"b": "x\\ny"}', "[DONE]"]
