"""The login demo in a real browser: Playwright driving Debian's Chromium.

Set ASWS_SCREENSHOT=path to save the logged-in page (the README's screenshot).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import browser, new_page
from tests.support.demo_process import DemoProcess

__all__ = ["browser", "new_page"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    server = DemoProcess()
    try:
        server.start()
        yield server
    finally:
        server.close()


def log_in(page: Any, base: str, username: str = "alice", password: str = "wonderland") -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def expect_live_as(page: Any, who: str, timeout: float = 5000) -> None:
    """The page's socket is open and the server said it belongs to `who`."""
    expect(page.locator("#user")).to_have_text(who, timeout=timeout)
    expect(page.locator("#status")).to_have_text("open", timeout=timeout)


def test_logout_in_one_tab_drops_the_other_tab_to_anonymous(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    first = new_page()
    log_in(first, demo.url)
    expect_live_as(first, "alice")
    second = first.context.new_page()  # a second tab of the same browser
    second.goto(demo.url + "/")
    expect_live_as(second, "alice")
    expect(first.locator("#others")).to_have_text("1", timeout=5000)  # presence
    if path := os.environ.get("ASWS_SCREENSHOT"):
        expect(first.locator("#seconds")).not_to_have_text("0", timeout=5000)
        first.screenshot(path=path)

    first.click("#logout")
    started = time.monotonic()
    first.wait_for_url(demo.url + "/login")
    expect(second.locator("#close-code")).to_have_text("4001", timeout=3000)
    expect(second.locator("#close-reason")).to_contain_text("session ended", timeout=3000)
    expect_live_as(second, "anonymous", timeout=3000)
    assert time.monotonic() - started < 3.0
    expect(second.locator("#stale")).to_be_visible()  # the page tells the user to reload
    assert second.request.get(demo.url + "/api/me").json() == {"user": None}


def test_log_out_everywhere_closes_another_devices_socket(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    laptop_page, phone_page = new_page(), new_page()  # two contexts: laptop and phone
    log_in(laptop_page, demo.url)
    log_in(phone_page, demo.url)
    expect_live_as(laptop_page, "alice")
    expect_live_as(phone_page, "alice")
    laptop_page.click("#logout-everywhere")
    started = time.monotonic()
    laptop_page.wait_for_url(demo.url + "/login")
    expect(phone_page.locator("#close-code")).to_have_text("4001", timeout=3000)
    expect_live_as(phone_page, "anonymous", timeout=3000)
    assert time.monotonic() - started < 3.0
    assert phone_page.request.get(demo.url + "/api/me").json() == {"user": None}


def test_server_going_away_is_shown_and_retried_with_backoff(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    page = new_page()
    page.goto(demo.url + "/")
    expect_live_as(page, "anonymous")
    assert demo.stop() == 0  # a clean shutdown closes sockets with 1001
    # the first close says why; #close-code shows the latest (the failed retries')
    first_close = page.locator("#log li", has_text="socket closed").last
    expect(first_close).to_contain_text("socket closed: 1001 server going away")
    page.wait_for_timeout(3000)
    # the retries fail (1006); backoff 0.25, 0.5, 1, 2 s (with jitter) allows a handful
    closes = page.locator("#log li", has_text="socket closed").count()
    assert 2 <= closes <= 6, closes
    expect(page.locator("#close-code")).to_have_text("1006")
