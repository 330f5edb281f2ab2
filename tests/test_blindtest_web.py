"""The blind test page in headless Chromium, taken by a scripted judge on a phone-sized screen:
items one per screen with progress, keyboard and touch picks, markup shown as text, resume after
a reload, and the answers computed into results."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from blindtest_builders import MARKUP, copy_store
from doppel.blindtest.results import compute
from doppel.blindtest.server import create_app
from doppel.blindtest.store import BlindStore
from doppel.infer.server import run_in_thread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = os.environ.get("DOPPEL_SCREENSHOTS")  # a folder: keep the page's screenshots there

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason="Debian's chromium is not installed (`make browser` installs it)"),
]


@pytest.fixture
def browser_page():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        # bypass_csp lets the test evaluate JS; the page itself must not rely on CSP to stay safe
        context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                      is_mobile=True, bypass_csp=True)  # to evaluate JS
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.requests = requests
        yield page
        browser.close()


@pytest.fixture
def served(prepared, tmp_path):
    _, _, store_path, links = prepared
    store = BlindStore(copy_store(store_path, tmp_path / "web.sqlite"))
    server, base = run_in_thread(create_app(store))
    yield store, base, {judge: link.rsplit("/t/", 1)[1] for judge, link in links.items()}
    server.should_exit = True
    store.close()


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def screen(page) -> list[str]:
    """The texts of the item on screen; no markup from a message became an element."""
    assert page.locator("main script, main img, main b").count() == 1  # the hint's own "Next"
    assert page.locator(".hint b").count() == 1
    return page.locator("#context .text, .candidate .bubble").all_inner_texts()


def test_a_scripted_judge_takes_the_test(browser_page, served):
    page = browser_page
    store, base, tokens = served
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{base}/t/{tokens['Sam']}")
    page.wait_for_selector("#item:not([hidden])")
    assert page.inner_text("#progress") == "1 of 4"
    assert page.inner_text("#question") == "Which reply is really Alex's?"
    assert page.locator(".candidate").count() == 2
    shot(page, "item-1")
    shown = screen(page)

    # keyboard: a number picks, Enter confirms
    assert page.is_disabled("#next")
    page.keyboard.press("1")
    assert page.get_attribute(".candidate >> nth=0 >> .choose", "aria-pressed") == "true"
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#progress').textContent === '2 of 4'")
    shown += screen(page)
    # touch: tap a candidate, rate both, tap Next
    page.tap(".candidate >> nth=1 >> .choose")
    page.tap(".candidate >> nth=0 >> .star >> nth=3")
    page.tap(".candidate >> nth=1 >> .star >> nth=1")
    page.tap("#next")
    page.wait_for_function("document.querySelector('#progress').textContent === '3 of 4'")

    page.reload()  # pause: the page resumes at the first unanswered item
    page.wait_for_selector("#item:not([hidden])")
    assert page.inner_text("#progress") == "3 of 4"
    for left in ("4 of 4", None):
        shown += screen(page)
        page.tap(".candidate >> nth=0 >> .choose")
        page.tap("#next")
        if left:
            page.wait_for_function(f"document.querySelector('#progress').textContent === "
                                   f"'{left}' && !document.querySelector('.picked')")
    page.wait_for_selector("#done:not([hidden])")
    shot(page, "done")
    assert page.inner_text("#progress") == "4 of 4"

    answers = store.answers("Sam")
    items = store.items("Sam")
    assert [a.item for a in answers] == [i.id for i in items]
    assert [a.pick for a in answers] == [0, 1, 0, 0]
    assert answers[1].ratings == [4, 2] and answers[0].ratings == [None, None]
    results = compute(store)
    expected = sum(i.sources[a.pick] == "twin" for i, a in zip(items, answers, strict=True)) / 4
    assert results.judges["Sam"].answers == 4 and results.judges["Sam"].share == expected
    # Sam's chat holds HTML and script payloads: they were on screen as text, never run
    assert any(MARKUP in text for text in shown)
    assert dialogs == []
    assert all(url.startswith(base) for url in page.requests)  # nothing fetched from elsewhere


def test_a_wrong_link_shows_no_page(browser_page, served):
    _, base, _ = served
    response = browser_page.goto(f"{base}/t/wrong-token")
    assert response.status == 404 and "Alex" not in browser_page.content()
