"""The login demo in a real browser: Playwright driving Debian's Chromium.

Set ASWS_SCREENSHOT=path to save the logged-in page (the README's screenshot).
"""

from __future__ import annotations

import os
import re
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


def watch_errors(page: Any) -> list[str]:
    """Every HTTP error the page's requests get (e.g. a favicon 404), as 'status url'."""
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return errors


def expect_logged_out_page(page: Any, notice: str) -> None:
    """The page reloaded over HTTP: logged out, saying why."""
    expect(page.locator("#page-user")).to_have_text("Not logged in", timeout=10_000)
    expect(page.locator("#notice")).to_contain_text(notice, timeout=10_000)
    expect(page.locator("#logout")).to_have_count(0)
    expect_live_as(page, "anonymous", timeout=10_000)


def test_logout_in_one_tab_logs_the_other_tab_out_too(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    first = new_page()
    errors = watch_errors(first)
    log_in(first, demo.url)
    expect_live_as(first, "alice")
    second = first.context.new_page()  # a second tab of the same browser
    errors += watch_errors(second)
    second.goto(demo.url + "/")
    expect_live_as(second, "alice")
    expect(first.locator("#others")).to_have_text("1", timeout=5000)  # presence
    if path := os.environ.get("ASWS_SCREENSHOT"):
        expect(first.locator("#connected-for")).to_have_text("3 s", timeout=10_000)
        first.screenshot(path=path)

    first.click("#logout")
    started = time.monotonic()
    first.wait_for_url(demo.url + "/login")
    # 4001 -> the client's onSessionEnded hook -> /api/me says null -> the page reloads
    expect_logged_out_page(second, "changed in another tab or on another device")
    expect(second.locator("#notice")).to_contain_text("you are logged out")
    assert time.monotonic() - started < 10.0
    assert second.request.get(demo.url + "/api/me").json() == {"user": None}
    assert errors == []  # item 3: no favicon 404 (or any other error)


def test_a_stale_tabs_logout_logs_out_after_a_new_login_elsewhere(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    """Item 1: log out in tab 1, log in again there; tab 2's Log out must log out."""
    first = new_page()
    log_in(first, demo.url)
    second = first.context.new_page()
    second.goto(demo.url + "/")
    expect_live_as(second, "alice")
    first.click("#logout")
    first.wait_for_url(demo.url + "/login")
    log_in(first, demo.url)
    # tab 2 followed both changes (reloaded by its socket's hook) and holds a fresh form
    expect(second.locator("#page-user")).to_have_text("Logged in as alice", timeout=10_000)
    expect_live_as(second, "alice", timeout=10_000)
    second.click("#logout")
    second.wait_for_url(demo.url + "/login")
    assert second.request.get(demo.url + "/api/me").json() == {"user": None}


def test_a_stale_form_without_the_script_gets_the_page_again_not_a_bare_403(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    """Item 1 when the tab could not follow (its script blocked, as a suspended tab's)."""
    first = new_page()
    log_in(first, demo.url)
    second = first.context.new_page()
    second.route("**/static/panel.js", lambda route: route.abort())
    second.goto(demo.url + "/")
    first.click("#logout")
    first.wait_for_url(demo.url + "/login")
    log_in(first, demo.url)
    second.click("#logout")  # its CSRF token died with the session it was rendered for
    expect(second.locator("#error")).to_contain_text("This page was out of date")
    expect(second.locator("#error")).to_contain_text("nothing was done")
    expect(second.locator("#page-user")).to_have_text("Logged in as alice")
    second.click("#logout")  # the page's fresh form works
    second.wait_for_url(demo.url + "/login")
    assert second.request.get(demo.url + "/api/me").json() == {"user": None}


def test_log_out_everywhere_logs_the_other_device_out_over_http(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    """Item 9: the other device's page becomes logged out, not just reconnected."""
    laptop_page, phone_page = new_page(), new_page()  # two contexts: laptop and phone
    log_in(laptop_page, demo.url)
    log_in(phone_page, demo.url)
    expect_live_as(laptop_page, "alice")
    expect_live_as(phone_page, "alice")
    laptop_page.click("#logout-everywhere")
    laptop_page.wait_for_url(demo.url + "/login")
    expect_logged_out_page(phone_page, "you are logged out")
    assert phone_page.request.get(demo.url + "/api/me").json() == {"user": None}


def test_other_tabs_counts_this_browsers_tabs_only(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    """Item 3: another browser of the same user is not one of "your other tabs"."""
    laptop, phone = new_page(), new_page()
    log_in(laptop, demo.url)
    log_in(phone, demo.url)
    laptop_tab = laptop.context.new_page()
    laptop_tab.goto(demo.url + "/")
    for page in (laptop, phone, laptop_tab):
        expect_live_as(page, "alice")
    expect(laptop.locator("#others")).to_have_text("1", timeout=5000)
    expect(laptop_tab.locator("#others")).to_have_text("1", timeout=5000)
    phone.wait_for_timeout(1500)  # a few ticks
    expect(phone.locator("#others")).to_have_text("0")


def test_server_going_away_is_shown_with_the_next_try_and_then_cleared(
    new_page: Callable[[], Any], demo: DemoProcess
) -> None:
    """Items 2 and 3: 1001 stays shown through the outage, with when the next try is;
    once back, the panel says connected (no "reconnecting"), and the clock runs.

    Anonymous: a restart without --redis logs everyone out (the login generations are
    in memory), and a logged-in page would reload (the next test)."""
    page = new_page()
    page.goto(demo.url + "/")
    expect_live_as(page, "anonymous")
    assert demo.stop() == 0  # a clean shutdown closes sockets with 1001
    expect(page.locator("#close-code")).to_have_text("1001")
    expect(page.locator("#close-reason")).to_contain_text("server going away")
    expect(page.locator("#connected-for")).to_have_text("not connected")
    # the retries fail before opening; the panel keeps 1001 and counts them
    expect(page.locator("#next-try")).to_contain_text("failed attempt", timeout=10_000)
    expect(page.locator("#next-try")).to_have_text(re.compile(r"^in \d+\.\d s "))
    expect(page.locator("#close-code")).to_have_text("1001")
    expect(page.locator("#log li", has_text="could not connect").first).to_be_visible()
    restarted = DemoProcess(port=demo.port)  # the same port
    try:
        restarted.start()
        expect_live_as(page, "anonymous", timeout=20_000)
        expect(page.locator("#notice")).to_be_hidden()
        expect(page.locator("#next-try")).to_have_text("—")
        expect(page.locator("#close-reason")).not_to_contain_text("reconnecting")
        expect(page.locator("#connected-for")).to_have_text("2 s", timeout=5000)
    finally:
        restarted.close()


def test_a_restart_without_a_fixed_key_is_named_as_the_cause(
    new_page: Callable[[], Any],
) -> None:
    """Item 4: not "another tab or device" when the server's restart forgot the session."""
    demo = DemoProcess(secret=None)
    restarted = DemoProcess(port=demo.port, secret=None)
    try:
        demo.start()
        page = new_page()
        log_in(page, demo.url)
        expect_live_as(page, "alice")
        assert demo.stop() == 0
        restarted.start()
        expect_logged_out_page(page, "The server restarted and your session did not survive it")
        notice = page.locator("#notice")
        expect(notice).to_contain_text("every restart logs everyone out")
        expect(notice).not_to_contain_text("another tab")
    finally:
        demo.close()
        restarted.close()
