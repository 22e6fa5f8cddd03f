"""The shipped browser client (`aiohttp_session_ws/static/session_ws.js`) in Chromium.

Each close code and what the client does about it, backoff spacing, a refused
handshake, an unreachable server, a rolling restart of one of two nodes behind a
round-robin proxy, offline/online and a hidden page. The server is
`tests/support/client_app.py` in its own process; the page records every hook
call in `window.events` (times from `performance.now()`, in ms).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.browser import browser, new_page
from tests.support.demo_process import DemoProcess
from tests.support.redis_server import free_port
from tests.support.tcp_proxy import RoundRobinProxy

__all__ = ["browser", "new_page"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

MIN_DELAY = 300  # ms, the tests' minDelay: retry n waits [d/2, d], d = MIN_DELAY * 2**n
STABLE_AFTER = 600  # ms
EVENTUALLY = 15_000  # ms: generous, the machine is shared
LATE = 1500  # ms a timer may fire late on a loaded machine (never early)


class ClientApp(DemoProcess):
    """`python -m tests.support.client_app` in its own process."""

    module = "tests.support.client_app"
    ready_path = "/healthz"

    def __init__(self, node: str = "A", *, origins: tuple[str, ...] = (), port: int | None = None):
        super().__init__("--node", node, port=port, secret=None)
        for origin in origins or (self.url,):
            self.args += ["--origin", origin]


@pytest.fixture
def app() -> Iterator[ClientApp]:
    server = ClientApp()
    try:
        server.start()
        yield server
    finally:
        server.close()


def open_page(new_page: Callable[[], Any], url: str) -> Any:
    page = new_page()
    page.goto(url + "/")
    page.wait_for_function("window.ready === true")
    return page


def start(page: Any, **options: Any) -> None:
    defaults = {"minDelay": MIN_DELAY, "stableAfter": STABLE_AFTER}
    page.evaluate("(options) => start(options)", {**defaults, **options})


def events(page: Any, kind: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.events")
    return [e for e in found if kind is None or e["type"] == kind]


def wait_events(page: Any, kind: str, count: int, timeout: float = EVENTUALLY) -> None:
    page.wait_for_function(
        "([kind, count]) => window.events.filter((e) => e.type === kind).length >= count",
        arg=[kind, count],
        timeout=timeout,
    )


def wait_state(page: Any, state: str, timeout: float = EVENTUALLY) -> None:
    page.wait_for_function("(s) => window.live.state === s", arg=state, timeout=timeout)


def open_and_stable(page: Any, opens: int = 1) -> None:
    wait_events(page, "open", opens)
    page.wait_for_timeout(STABLE_AFTER + 200)  # past stableAfter: the backoff is reset


def closes(page: Any) -> list[dict[str, Any]]:
    return [e["close"] | {"t": e["t"]} for e in events(page, "close")]


def connecting_times(page: Any) -> list[float]:
    return [e["t"] for e in events(page, "change") if e["state"] == "connecting"]


def assert_waited(page: Any, close: dict[str, Any]) -> None:
    """The attempt after `close` started no earlier than promised, and not much later."""
    page.wait_for_function(
        "(t) => window.events.some((e) => e.type === 'change' && e.state === 'connecting'"
        " && e.t >= t)",
        arg=close["t"],
        timeout=EVENTUALLY,
    )
    after = [t for t in connecting_times(page) if t >= close["t"]]
    waited = after[0] - close["t"]
    assert close["delay"] - 5 <= waited <= close["delay"] + LATE, (waited, close)


def bounds(n: int) -> tuple[float, float]:
    d = MIN_DELAY * 2**n
    return d / 2, d


def test_the_page_imports_the_served_module_and_retry_delays_follow_the_formula(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    page = open_page(new_page, app.url)
    delays = page.evaluate(
        "[0, 1, 2, 10].flatMap((n) => [retryDelay(n, 500, 30000, () => 0),"
        " retryDelay(n, 500, 30000, () => 0.999999)])"
    )
    assert [round(d) for d in delays] == [250, 500, 500, 1000, 1000, 2000, 15000, 30000]
    assert page.evaluate("DEFAULT_STOP_CODES") == [1002, 1003, 1007, 1008, 1009, 1010]
    assert page.evaluate("window.live") is None  # nothing connects before start()


def test_session_ended_calls_the_hook_then_reconnects_at_once(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    page = open_page(new_page, app.url)
    start(page, hookDelay=400)
    open_and_stable(page)
    assert page.evaluate("fetch('/reset', {method: 'POST'}).then((r) => r.status)") == 200
    wait_events(page, "open", 2)
    (close,) = closes(page)
    assert close["code"] == 4001 and close["reason"] == "session ended"
    assert close["wasClean"] and close["opened"]
    assert (close["action"], close["delay"]) == ("reconnect", 0)
    order = [e["type"] for e in events(page) if e["type"] in {"sessionended", "hookdone", "open"}]
    assert order == ["open", "sessionended", "hookdone", "open"]  # reconnects after the hook
    hook_done = events(page, "hookdone")[0]["t"]
    assert connecting_times(page)[1] - hook_done < LATE  # at once after the hook
    second = events(page, "message")[-1]["data"]
    assert second["connects"] == 2  # the new socket, with the new id, was accepted


def test_session_ended_again_right_after_connecting_backs_off(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    """A revoked id that the browser still presents (stale cookie): 4001 at once, again."""
    page = open_page(new_page, app.url)
    start(page)
    open_and_stable(page)
    assert page.evaluate("fetch('/revoke-all', {method: 'POST'}).then((r) => r.json())") == {
        "closed": 1
    }
    wait_events(page, "close", 4)
    first, *again = closes(page)[:4]
    assert first["code"] == 4001 and (first["action"], first["delay"]) == ("reconnect", 0)
    for n, close in enumerate(again, start=1):  # each came right after connecting
        assert close["code"] == 4001 and close["opened"] and close["action"] == "backoff"
        low, high = bounds(n)
        assert low <= close["delay"] <= high, (n, close)
        assert_waited(page, close)
    assert len(events(page, "sessionended")) >= 4  # the hook runs each time


@pytest.mark.parametrize("code", [1000, 1011, 1012, 1013, 1014, 4000, 4499])
def test_codes_that_back_off(new_page: Callable[[], Any], app: ClientApp, code: int) -> None:
    page = open_page(new_page, app.url)
    start(page)
    open_and_stable(page)
    page.evaluate("(code) => live.send('close:' + code)", code)
    wait_events(page, "open", 2)
    (close,) = closes(page)
    assert (close["code"], close["reason"], close["wasClean"]) == (code, "asked", True)
    assert close["action"] == "backoff"
    low, high = bounds(0)  # the socket was stable: the first retry's bounds
    assert low <= close["delay"] <= high
    assert_waited(page, close)
    assert not events(page, "sessionended")


def test_try_again_later_on_every_connect_backs_off_with_growing_delays(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    """1013: the server could not determine the user; each retry waits longer."""
    page = open_page(new_page, app.url)
    assert (
        page.evaluate(
            "fetch('/on-connect?code=1013&count=4', {method: 'POST'}).then((r) => r.status)"
        )
        == 200
    )
    start(page)
    wait_events(page, "close", 4)
    wait_events(page, "open", 5)  # the fifth connect is served
    for n, close in enumerate(closes(page)):
        assert (close["code"], close["opened"], close["action"]) == (1013, True, "backoff")
        low, high = bounds(n)
        assert low <= close["delay"] <= high, (n, close)
        assert_waited(page, close)


@pytest.mark.parametrize(
    ("code", "options"),
    [(1008, {}), (1003, {}), (1007, {}), (4403, {"stopCodes": [1008, 4403]})],
)
def test_codes_that_stop(
    new_page: Callable[[], Any], app: ClientApp, code: int, options: dict[str, Any]
) -> None:
    page = open_page(new_page, app.url)
    start(page, **options)
    wait_events(page, "open", 1)
    page.evaluate("(code) => live.send('close:' + code)", code)
    wait_state(page, "stopped")
    (close,) = closes(page)
    assert (close["code"], close["action"], close["delay"]) == (code, "stop", None)
    assert page.evaluate("live.stopReason") == f"close code {code}"
    assert page.evaluate("live.nextRetryAt") is None
    page.wait_for_timeout(2 * MIN_DELAY + 500)
    assert len(connecting_times(page)) == 1 and len(events(page, "stop")) == 1
    assert page.evaluate("live.send('ping')") is False
    page.evaluate("live.start()")  # the app may start it again
    wait_events(page, "open", 2)


def test_the_app_can_choose_its_session_ended_code(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    page = open_page(new_page, app.url)
    start(page, sessionEndedCode=4003)
    open_and_stable(page)
    page.evaluate("live.send('close:4001')")  # not the session-ended code any more
    wait_events(page, "open", 2)
    open_and_stable(page, 2)
    page.evaluate("live.send('close:4003')")
    wait_events(page, "open", 3)
    first, second = closes(page)
    assert (first["code"], first["action"]) == (4001, "backoff")
    assert (second["code"], second["action"], second["delay"]) == (4003, "reconnect", 0)
    assert [e["code"] for e in events(page, "sessionended")] == [4003]


def test_connection_lost_backs_off(new_page: Callable[[], Any], app: ClientApp) -> None:
    page = open_page(new_page, app.url)
    start(page)
    open_and_stable(page)
    page.evaluate("live.send('abort')")  # TCP dropped, no close frame
    wait_events(page, "open", 2)
    (close,) = closes(page)
    assert (close["code"], close["wasClean"], close["opened"]) == (1006, False, True)
    assert close["action"] == "backoff"
    assert_waited(page, close)


def test_a_refused_handshake_stops_after_three_attempts(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    """The page's origin (localhost) is not on the allow-list (127.0.0.1): HTTP 403."""
    page = open_page(new_page, f"http://localhost:{app.port}")
    start(page)
    wait_state(page, "stopped")
    attempts = closes(page)
    assert [c["action"] for c in attempts] == ["backoff", "backoff", "stop"]
    assert all(c["code"] == 1006 and not c["opened"] for c in attempts)
    assert page.evaluate("live.stopReason") == "refused"
    assert not events(page, "open")
    page.wait_for_timeout(2 * MIN_DELAY + 500)
    assert len(connecting_times(page)) == 3  # no more attempts


def test_an_unreachable_server_is_retried_until_it_answers(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    page = open_page(new_page, app.url)
    assert app.stop() == 0
    start(page, maxDelay=1200)
    wait_events(page, "close", 5)  # more than refusedAfter: it does not stop
    attempts = closes(page)
    assert all(not c["opened"] and c["action"] == "backoff" for c in attempts)
    for n, close in enumerate(attempts[:5]):
        low, high = bounds(n)
        assert min(low, 600) <= close["delay"] <= min(high, 1200), (n, close)
        assert_waited(page, close)
    restarted = ClientApp(port=app.port)
    try:
        restarted.start()
        wait_state(page, "open")
    finally:
        restarted.close()


def test_rolling_restart_reconnects_to_the_other_node(
    new_page: Callable[[], Any],
) -> None:
    """Two nodes behind a round-robin proxy; each in turn shuts down (1001) and comes back."""
    port_a, port_b = free_port(), free_port()
    with RoundRobinProxy([port_a, port_b]) as proxy:
        nodes = {
            "A": ClientApp("A", port=port_a, origins=(proxy.url,)),
            "B": ClientApp("B", port=port_b, origins=(proxy.url,)),
        }
        try:
            for node in nodes.values():
                node.start()
            page = open_page(new_page, proxy.url)
            start(page)
            open_and_stable(page)
            for round_ in range(1, 3):
                serving = events(page, "message")[-1]["data"]["node"]
                other = "B" if serving == "A" else "A"
                assert nodes[serving].stop() == 0  # SIGTERM: shutdown closes with 1001
                wait_events(page, "open", round_ + 1)
                close = closes(page)[-1]
                assert (close["code"], close["reason"]) == (1001, "server shutdown")
                assert close["wasClean"] and close["action"] == "backoff"
                low, high = bounds(0)
                assert low <= close["delay"] <= high
                assert_waited(page, close)
                page.wait_for_function(
                    "(node) => window.events.filter((e) => e.type === 'message')"
                    ".at(-1).data.node === node",
                    arg=other,
                    timeout=EVENTUALLY,
                )
                restarted = ClientApp(serving, port=nodes[serving].port, origins=(proxy.url,))
                nodes[serving].close()
                nodes[serving] = restarted
                restarted.start()
                open_and_stable(page, round_ + 1)
        finally:
            for node in nodes.values():
                node.close()


def test_offline_pauses_and_online_reconnects_at_once(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    page = open_page(new_page, app.url)
    start(page)
    open_and_stable(page)
    page.context.set_offline(True)
    wait_state(page, "paused")
    assert page.evaluate("[live.pauseReason, live.nextRetryAt, live.socket]") == [
        "offline",
        None,
        None,
    ]
    page.wait_for_timeout(4 * MIN_DELAY)
    assert len(connecting_times(page)) == 1  # no attempts while offline
    page.context.set_offline(False)
    online_at = page.evaluate("performance.now()")
    wait_events(page, "open", 2)
    assert connecting_times(page)[1] - online_at < LATE  # at once, no backoff


def test_hidden_page_pauses_when_asked(new_page: Callable[[], Any], app: ClientApp) -> None:
    """Headless Chromium never hides a page, so the page's visibility is overridden."""
    page = open_page(new_page, app.url)
    page.evaluate(
        "window.hidden = false;"
        "Object.defineProperty(document, 'visibilityState',"
        " {get: () => (window.hidden ? 'hidden' : 'visible')});"
        "window.setHidden = (h) => { window.hidden = h;"
        " document.dispatchEvent(new Event('visibilitychange')); };"
    )
    start(page, pauseWhenHidden=True)
    open_and_stable(page)
    page.evaluate("setHidden(true)")
    wait_state(page, "paused")
    assert page.evaluate("live.pauseReason") == "hidden"
    page.wait_for_timeout(4 * MIN_DELAY)
    assert len(connecting_times(page)) == 1
    page.evaluate("setHidden(false)")
    wait_events(page, "open", 2)
    # without pauseWhenHidden, a hidden page keeps its socket
    page.evaluate("live.stop()")
    start(page)
    wait_state(page, "open")
    page.evaluate("setHidden(true)")
    page.wait_for_timeout(500)
    assert page.evaluate("live.state") == "open"


def test_stop_closes_and_stays_stopped(new_page: Callable[[], Any], app: ClientApp) -> None:
    page = open_page(new_page, app.url)
    start(page)
    wait_events(page, "open", 1)
    assert page.evaluate("live.send('ping')") is True
    page.evaluate("live.stop()")
    assert page.evaluate("[live.state, live.stopReason, live.socket]") == [
        "stopped",
        "stop()",
        None,
    ]
    page.wait_for_timeout(2 * MIN_DELAY + 500)
    assert len(connecting_times(page)) == 1 and not events(page, "close")


def test_a_url_that_cannot_be_a_websockets_stops_with_the_reason(
    new_page: Callable[[], Any], app: ClientApp
) -> None:
    page = open_page(new_page, app.url)
    start(page, url="ftp://127.0.0.1/ws")
    wait_state(page, "stopped")
    assert page.evaluate("live.stopReason").startswith("cannot open a socket: ")
    assert len(events(page, "stop")) == 1 and not connecting_times(page)
