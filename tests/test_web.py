"""The web chat page in headless Chromium: streamed bubbles, text-only markup, reset, transcript."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from doppel.infer.echo import EchoBackend
from doppel.infer.server import create_app, run_in_thread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason="Debian's chromium is not installed (`make browser` installs it)"),
]


@pytest.fixture
def page():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        # bypass_csp: lets the test evaluate JS; the page itself must not rely on CSP to stay safe
        page = browser.new_page(viewport={"width": 900, "height": 640}, bypass_csp=True)
        yield page
        browser.close()


@pytest.fixture
def url():
    server, base = run_in_thread(create_app(EchoBackend(["Alex", "Sam"], delay_s=0.15)))
    yield base
    server.should_exit = True


def test_chat_page_streams_bubbles_and_shows_markup_as_text(page, url, tmp_path):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('#persona option').length === 2")
    assert page.input_value("#persona") == "Alex" and page.input_value("#me") == "Sam"

    page.fill("#text", "hey")
    page.press("#text", "Enter")
    # streamed: the model's bubble appears while the typing indicator is still on
    page.wait_for_selector(".bubble.theirs")
    assert page.is_visible("#typing")
    page.wait_for_selector("#typing", state="hidden")
    bubbles = page.locator(".bubble.theirs .text").all_inner_texts()
    assert bubbles == ["hey", "(1 messages so far)"]

    attack = '<script>alert("x")</script><img src=x onerror=alert(1)><b>bold</b>'
    page.fill("#text", attack)
    page.press("#text", "Enter")
    page.wait_for_function("document.querySelectorAll('.bubble.theirs').length === 4")
    page.wait_for_selector("#typing", state="hidden")
    assert page.locator(".bubble.mine .text").last.inner_text() == attack
    assert page.locator(".bubble.theirs .text").nth(2).inner_text() == attack
    assert page.locator("#log script, #log img, #log b").count() == 0
    assert dialogs == []

    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "transcript.md"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert "**Sam:** hey  \n**Alex:** hey  \n**Alex:** (1 messages so far)" in text

    page.click("#reset")
    assert page.locator(".bubble").count() == 0
