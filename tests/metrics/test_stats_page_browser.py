"""The stats page in a real headless Chromium (Debian's `chromium`, driven by Playwright).

The page loads with no console error and no failed request, names from the config are shown as text (a
backend named like an HTML tag runs no script), a backend the test kills shows DOWN within one refresh of
the health check noticing it, and a phone-sized viewport renders without horizontal scroll.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Request, sync_playwright

from support.backends import EchoBackend
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get, http_config, lua
from support.rsp_process import RspProcess
from support.stats_client import stats_json
from support.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/bootstrap); never `playwright install`
REFRESH = 1.0
FETCH_SLACK = 3.0  # a fetch and a render on a loaded 2-core machine
CHECK_INTERVAL = 0.3
# A name that would run script if the page ever wrote names as markup.
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">"&'
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses to sandbox as root
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


class PageProblems:
    """Console errors, uncaught exceptions and failed requests seen by a page."""

    def __init__(self, page: Page) -> None:
        self.items: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.items.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Request) -> None:
        self.items.append(f"request failed: {request.url} {request.failure}")


def row(page: Page, index: int) -> Locator:
    """The row of the pool's backend at `index` (selecting by a hostile name would need CSS escaping)."""
    return page.locator("tr[data-backend]").nth(index)


def state_of(page: Page, index: int) -> str:
    return str(row(page, index).locator("td.state").text_content())


def start_two_backend_rsp(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                          free_port: Callable[..., int]) -> tuple[RspProcess, int, Any, Any]:
    web = start_backend(HttpBackend, name="web")
    doomed = start_backend(EchoBackend)
    stats_port = free_port()
    pools = {"web": {"backends": [f"127.0.0.1:{web.port}", {"address": f"127.0.0.1:{doomed.port}",
                                                             "name": HOSTILE_NAME}],
                     "health": {"kind": "tcp", "interval": CHECK_INTERVAL, "timeout": CHECK_INTERVAL,
                                "rise": 1, "fall": 1}}}
    rsp = run_rsp(http_config(free_port(), [], pools=pools, pool="web",
                              extra=f"stats = {lua({'listen': f'127.0.0.1:{stats_port}', 'refresh': REFRESH})}"))
    return rsp, stats_port, web, doomed


def test_page_shows_a_killed_backend_down(browser: Browser, run_rsp: Callable[..., RspProcess],
                                          start_backend: Callable[..., Any], free_port: Callable[..., int]) -> None:
    rsp, stats_port, _, doomed = start_two_backend_rsp(run_rsp, start_backend, free_port)
    page = browser.new_page()
    problems = PageProblems(page)
    try:
        page.goto(f"http://127.0.0.1:{stats_port}/", wait_until="load")
        page.wait_for_selector('tr[data-backend="web/1"]', timeout=10_000)
        assert state_of(page, 0) == "UP"
        assert state_of(page, 1) == "UP"
        # Counters restart at each reload: the page says since when it counts (no reload yet: the start).
        since = page.locator("#since").text_content()
        assert since is not None and since.startswith("start, ") and since.endswith(" ago"), since
        # The hostile name is text, not markup.
        assert row(page, 1).locator("td.name").text_content() == HOSTILE_NAME
        assert row(page, 1).get_attribute("data-backend") == HOSTILE_NAME
        assert page.evaluate("window.__xss") is None
        assert page.locator("img").count() == 0
        assert page.locator("#caches-box").is_hidden()  # no cache configured: no empty Caches table
        for _ in range(4):
            assert get(rsp.port, "/").status in (200, 502)  # some traffic for the rate and request columns
        # Kill the backend, then wait for the health check to see it (fall = 1).
        doomed.stop()
        assert wait_until(lambda: stats_json(stats_port)["stats"]["pools"][0]["backends"][1]["state"] == "down", 10.0)
        seen = time.monotonic()
        # DOWN must be on the page within one refresh (plus the fetch's own time, on a loaded machine): the page
        # refreshes on its own, without a reload.
        page.wait_for_function(
            "() => [...document.querySelectorAll('tr.st-down td.state')].some(td => td.textContent === 'DOWN')",
            timeout=(REFRESH + FETCH_SLACK) * 1000)
        assert time.monotonic() - seen <= REFRESH + FETCH_SLACK
        assert state_of(page, 1) == "DOWN"
        assert state_of(page, 0) == "UP"
        row_colour = page.evaluate(
            "() => getComputedStyle(document.querySelector('tr.st-down td.state')).backgroundColor")
        assert row_colour == "rgb(214, 69, 65)"  # --down
        assert page.locator("#status").get_attribute("class") != "bad"
        requests = row(page, 0).locator('td[data-label="Requests"]').text_content()
        assert requests is not None and int(requests) >= 1
        # The request-rate graph has points once two polls came in.
        page.wait_for_function("() => document.getElementById('line').getAttribute('points').split(' ').length >= 2",
                               timeout=(REFRESH * 3 + 2) * 1000)
        assert problems.items == []
    finally:
        page.close()


def test_phone_viewport_has_no_horizontal_scroll(browser: Browser, run_rsp: Callable[..., RspProcess],
                                                 start_backend: Callable[..., Any],
                                                 free_port: Callable[..., int]) -> None:
    _, stats_port, _, _ = start_two_backend_rsp(run_rsp, start_backend, free_port)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        page.goto(f"http://127.0.0.1:{stats_port}/", wait_until="load")
        page.wait_for_selector('tr[data-backend="web/1"]', timeout=10_000)
        width = page.evaluate("document.documentElement.scrollWidth")
        inner = page.evaluate("window.innerWidth")
        assert inner == PHONE["width"]
        assert width <= inner, f"page is {width}px wide in a {inner}px viewport"
        # Rows became cards: the table head is hidden and each cell carries its label.
        assert page.locator("#listeners thead").is_hidden()
        assert page.locator('tr[data-backend="web/1"] td[data-label="State"]').is_visible()
        assert problems.items == []
    finally:
        context.close()


def test_page_shows_the_cache_figures(browser: Browser, run_rsp: Callable[..., RspProcess],
                                      start_backend: Callable[..., Any], free_port: Callable[..., int],
                                      tmp_path: Path) -> None:
    def cacheable(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Cache-Control", "max-age=300")], body=b"cached page\n")

    web = start_backend(HttpBackend, handler=cacheable)
    stats_port = free_port()
    caches = {"pages": {"size": "4m", "path": str(tmp_path / "pages.lmdb")}}
    routes = [{"path": "/", "pool": "default", "cache": "pages"}]
    rsp = run_rsp(http_config(free_port(), [web.port], routes=routes,
                              extra=f"caches = {lua(caches)}\n"
                                    f"stats = {lua({'listen': f'127.0.0.1:{stats_port}', 'refresh': REFRESH})}"))
    labels = [get(rsp.port, "/page").header("X-Cache") for _ in range(4)]
    assert labels == ["MISS", "HIT", "HIT", "HIT"]
    page = browser.new_page()
    problems = PageProblems(page)
    try:
        page.goto(f"http://127.0.0.1:{stats_port}/", wait_until="load")
        page.wait_for_selector('tr[data-cache="pages"]', timeout=10_000)
        assert page.locator("#caches-box").is_visible()

        def shown(label: str) -> str:
            return str(page.locator(f'tr[data-cache="pages"] td[data-label="{label}"]').text_content())

        assert (shown("Hits"), shown("Misses"), shown("Stores"), shown("Objects")) == ("3", "1", "1", "1")
        assert shown("Hit ratio") == "75.0 %"
        assert shown("Stored").endswith("B") and shown("Budget") == "2.4 MiB"  # 60 % of 4 MiB
        # The page follows new traffic at its next refresh.
        assert get(rsp.port, "/page").header("X-Cache") == "HIT"
        page.wait_for_function(
            "() => document.querySelector('tr[data-cache=\"pages\"] td[data-label=\"Hits\"]').textContent === '4'",
            timeout=(REFRESH * 2 + 2) * 1000)
        assert problems.items == []
    finally:
        page.close()
