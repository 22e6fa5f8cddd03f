"""Chromium's view of the library's closes: `CloseEvent.code` and `wasClean`.

The server runs in its own process (`tests/support/close_app.py`), one route per
handler shape; the page logs out from another request (fetch) and records each
socket's CloseEvent. Sizes grow with ASWS_FULL=1 (200 logouts per shape).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from aiohttp_session_ws import SESSION_ENDED_CODE, SHUTDOWN_CODE
from tests.support.browser import browser
from tests.support.close_app import SHAPES, CloseServer, running
from tests.support.sizes import size

__all__ = ["browser"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

LOGOUTS = size(20, 200)

# One socket at a time: open it, wait for its hello, log out with a fetch, record the close.
LOGOUT_LOOP = """
async ([shape, count]) => {
  const seen = [];
  for (let i = 0; i < count; i++) {
    await fetch('/id');
    const ws = new WebSocket(`ws://${location.host}/ws/${shape}`);
    const closed = new Promise((resolve) => {
      ws.onclose = (e) => resolve([e.code, e.reason, e.wasClean]);
    });
    await new Promise((resolve) => { ws.onmessage = resolve; });
    await fetch('/reset');
    seen.push(await closed);
  }
  return seen;
}
"""

# Open `count` sockets per shape; their CloseEvents land in window.closes.
OPEN_SOCKETS = """
async ([shapes, count]) => {
  window.closes = [];
  const opened = [];
  for (const shape of shapes) {
    for (let i = 0; i < count; i++) {
      const ws = new WebSocket(`ws://${location.host}/ws/${shape}`);
      ws.onclose = (e) => window.closes.push([e.code, e.reason, e.wasClean]);
      opened.push(new Promise((resolve) => { ws.onmessage = resolve; }));
    }
  }
  await Promise.all(opened);
}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[CloseServer]:
    with running() as process:
        yield process


@pytest.mark.parametrize("shape", SHAPES)
def test_chromium_sees_a_clean_4001_on_logout(
    browser: Any, server: CloseServer, shape: str
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/page")
        seen = page.evaluate(LOGOUT_LOOP, [shape, LOGOUTS])
    finally:
        context.close()
    expected = [SESSION_ENDED_CODE, "session ended", True]
    wrong = [event for event in seen if event != expected]
    assert len(seen) == LOGOUTS and not wrong, wrong[:5]


def test_chromium_sees_a_clean_1001_on_shutdown(browser: Any) -> None:
    per_shape = size(5, 50)
    with running() as process, contextlib.closing(browser.new_context()) as context:
        page = context.new_page()
        page.goto(process.url + "/page")
        page.evaluate(OPEN_SOCKETS, [list(SHAPES), per_shape])
        assert process.stop() == 0
        total = per_shape * len(SHAPES)
        page.wait_for_function(f"window.closes.length >= {total}", timeout=15_000)
        seen = page.evaluate("window.closes")
    assert seen == [[SHUTDOWN_CODE, "server shutdown", True]] * total
