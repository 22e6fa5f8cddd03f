"""No sessions the app did not create, and no save that undoes a login or logout.

Issue #11, items 1-4, each with RedisStorage (a private redis-server) and
EncryptedCookieStorage, on real servers, set up as the README's one-call
security setup does:

1. a stale request (its cookie predates a login) sets no cookie, over HTTP or on a 101;
2. a session write in flight during a logout does not log the browser back in;
3. cookieless requests leave no session records; a session the app writes
   carries a websocket id before any socket opens;
4. `remember`/`forget` given a websocket log in/out for real, or raise before
   anything changes;
5. a login or logout carrying an older cookie of the same browser leaves no
   socket of the newer login open (one node, and two Redis nodes).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from yarl import URL

from aiohttp_session_ws import REGISTRY_KEY
from aiohttp_session_ws.lineage import Link
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from tests.support.cluster import FAST
from tests.support.redis_server import RedisServer
from tests.support.security_app import (  # noqa: F401 - fixtures
    COOKIE_KEY,
    STYLES,
    Browser,
    expect_closed,
    expect_open,
    make_app,
    start_fixture,
)
from tests.support.security_nodes import Served, redis_nodes, running
from tests.support.sessions_app import add_session_routes, session_count

COOKIE = "AIOHTTP_SESSION"
Devices = Callable[..., Awaitable[tuple[web.Application, Callable[[], Awaitable[Browser]]]]]


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "cookie"])
def kind(request: pytest.FixtureRequest) -> str:
    """The session storage: RedisStorage (a private redis-server) or EncryptedCookieStorage."""
    return str(request.param)


@pytest.fixture
async def redis_client(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A client on the private redis-server (flushed after the test), for kind "redis"."""
    if kind != "redis":
        yield None
        return
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
    yield client
    await client.aclose()


@pytest.fixture
async def devices(
    kind: str, redis_client: Any, aiohttp_server: Any, aiohttp_client: Any
) -> Devices:
    """Build the app on the `kind` storage; return it and a browser factory."""

    async def build(
        *, policy: str = "session", style: str = "setup", rotate_session: bool = True
    ) -> tuple[web.Application, Callable[[], Awaitable[Browser]]]:
        if kind == "redis":
            from aiohttp_session.redis_storage import RedisStorage

            storage: Any = RedisStorage(redis_client)
        else:
            storage = EncryptedCookieStorage(COOKIE_KEY)
        app_policy = f"session-{kind}" if policy == "session" else policy
        app = make_app(app_policy, style, storage, rotate_session=rotate_session)
        add_session_routes(app, style, rotate_session=rotate_session)
        server = await aiohttp_server(app)

        async def browser() -> Browser:
            client = await aiohttp_client(server, cookie_jar=aiohttp.CookieJar(unsafe=True))
            return Browser(client)

        return app, browser

    return build


class StaleTab:
    """A tab whose requests left the browser while the jar still held `cookie`.

    Every cookie its responses set is put into the browser's jar, as a browser
    does whatever the request's age; `set_cookies` records them.
    """

    def __init__(self, browser: Browser, cookie: str) -> None:
        self.browser = browser
        self.set_cookies: list[str] = []
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._on_response)
        jar = aiohttp.CookieJar(unsafe=True)
        jar.update_cookies({COOKIE: cookie}, browser.client.make_url("/"))
        self.http = aiohttp.ClientSession(cookie_jar=jar, trace_configs=[trace])

    async def _on_response(self, session: Any, context: Any, params: Any) -> None:
        response: aiohttp.ClientResponse = params.response
        self.set_cookies += response.headers.getall("Set-Cookie", [])
        self.browser.client.session.cookie_jar.update_cookies(response.cookies, response.url)

    def url(self, path: str) -> URL:
        return self.browser.client.make_url(path)

    async def __aenter__(self) -> StaleTab:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()


async def login_with_pre_login_session(browser: Browser, user: str = "alice") -> str:
    """Load the login form (the app writes a CSRF token: cookie K0), log in; return K0."""
    async with browser.client.get("/form") as resp:
        assert resp.status == 200
    pre_login = browser.cookie()
    assert pre_login is not None
    await browser.login(user)
    assert browser.cookie() not in (None, pre_login)
    return pre_login


async def replay_user(browser: Browser, cookie: str) -> str | None:
    """Who a request carrying only `cookie` is (without touching the browser's jar)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        url = browser.client.make_url("/whoami")
        async with http.get(url, headers={"Cookie": f"{COOKIE}={cookie}"}) as resp:
            assert resp.status == 200
            user: str | None = (await resp.json())["user"]
            return user


# -- 1. a stale request -------------------------------------------------------------


async def test_stale_requests_after_login_set_no_cookie_and_logout_still_logs_out(
    kind: str, devices: Devices
) -> None:
    _app, browsers = await devices()
    browser = await browsers()
    pre_login = await login_with_pre_login_session(browser)
    logged_in = browser.cookie()
    user_ws, seen = await browser.ws()
    assert seen == "alice"

    async with StaleTab(browser, pre_login) as stale:
        # an XHR that left before the login
        async with stale.http.get(stale.url("/whoami")) as resp:
            assert resp.status == 200
            assert (await resp.json())["user"] is None
        # a tab's websocket reconnect that left before the login
        ws = await stale.http.ws_connect(stale.url("/ws"))
        msg = await ws.receive(timeout=5)
        # refused (the session was retired by the login) or anonymous; never the user
        assert msg.type is WSMsgType.CLOSE or msg.json()["user"] is None, msg
        await ws.close()
        assert stale.set_cookies == []
    assert browser.cookie() == logged_in

    await browser.logout()
    await expect_closed(user_ws)
    assert await browser.whoami() is None
    if kind == "redis":
        assert await replay_user(browser, logged_in) is None


async def test_a_socket_with_an_unknown_cookie_is_anonymous_and_saves_nothing(
    kind: str, devices: Devices
) -> None:
    """An expired, unknown or undecryptable cookie: the socket is served, anonymous,
    under an id that is never saved (no reconnect loop, no cookie)."""
    app, browsers = await devices()
    browser = await browsers()
    async with StaleTab(browser, "0123456789abcdef0123456789abcdef") as stale:
        ws = await stale.http.ws_connect(stale.url("/ws"))
        assert (await ws.receive_json(timeout=5))["user"] is None
        await expect_open(ws)
        assert stale.set_cookies == []
        assert app[REGISTRY_KEY].stats()["sockets"] == 1
        await ws.close()


async def test_a_cookieless_socket_starts_a_session_that_login_reaches(
    kind: str, devices: Devices
) -> None:
    """A socket of a browser with no session cookie at all starts one (saved on the
    101), as 1.1.1 did: the browser's login then closes it."""
    _app, browsers = await devices()
    browser = await browsers()
    ws, seen = await browser.ws()
    assert seen is None
    assert browser.cookie() is not None
    await browser.login("alice")
    await expect_closed(ws)


# -- 2. a session write in flight during a logout ---------------------------------------


async def test_a_session_write_in_flight_does_not_undo_a_logout(
    kind: str, devices: Devices
) -> None:
    _app, browsers = await devices()
    undone = 0
    for _ in range(20):
        browser = await browsers()
        await login_with_pre_login_session(browser)
        logged_in = browser.cookie()
        assert logged_in is not None
        writer = asyncio.ensure_future(browser.client.post("/slow-write"))
        await asyncio.sleep(0.05)
        await browser.logout()
        async with await writer as resp:
            assert resp.status == 200
            assert (await resp.json())["user"] == "alice"  # it read the logged-in session
        if await browser.whoami() is not None:
            undone += 1
        elif kind == "redis" and await replay_user(browser, logged_in) is not None:
            undone += 1  # the old record came back to life
    assert undone == 0


async def test_a_write_that_is_not_in_a_retired_session_is_saved(
    kind: str, devices: Devices
) -> None:
    """The guard above drops only retired sessions: ordinary writes, and the login
    and logout themselves, are saved."""
    _app, browsers = await devices()
    browser = await browsers()
    await login_with_pre_login_session(browser)
    before = browser.cookie()
    async with browser.client.post("/slow-write") as resp:
        assert resp.status == 200
    if kind == "cookie":
        assert browser.cookie() != before  # the write was saved into a new cookie
    assert await browser.whoami() == "alice"
    await browser.logout()
    assert await browser.whoami() is None
    await browser.login("bob")
    assert await browser.whoami() == "bob"


# -- 3. no session per cookieless request -------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis"])
async def test_cookieless_requests_leave_no_session_records(
    devices: Devices, redis_client: Any
) -> None:
    _app, browsers = await devices()
    set_cookies = 0
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        url = (await browsers()).client.make_url("/")
        for path in ["healthz"] * 300 + ["whoami"] * 30 + ["no-such-page"]:
            # /whoami reads the (new, empty) session: still nothing to save
            async with http.get(url / path) as resp:
                assert resp.status == (404 if path == "no-such-page" else 200)
                set_cookies += len(resp.headers.getall("Set-Cookie", []))
    assert (set_cookies, session_count(await redis_client.keys("*"))) == (0, 0)


async def test_a_session_the_app_writes_carries_an_id_before_any_socket(
    kind: str, devices: Devices, redis_client: Any
) -> None:
    app, browsers = await devices()
    registry = app[REGISTRY_KEY]
    browser = await browsers()
    async with browser.client.get("/form") as resp:  # the app writes a CSRF token
        assert resp.status == 200
    cookie = browser.cookie()
    assert cookie is not None
    if redis_client is not None:
        record = json.loads(await redis_client.get(f"{COOKIE}_{cookie}"))
        assert registry.session_key in record["session"]
    ws, seen = await browser.ws()
    assert seen is None
    assert browser.cookie() == cookie  # the socket needed no new cookie
    assert len(registry) == 1
    await browser.login("alice")
    await expect_closed(ws)


# -- 4. remember/forget given a websocket ---------------------------------------------------


async def ask(ws: aiohttp.ClientWebSocketResponse, text: str) -> aiohttp.WSMessage:
    """Send `text` on /ws-auth; return the answer (a TEXT "ok"/"error: ...", or the CLOSE)."""
    await ws.send_str(text)
    return await ws.receive(timeout=5)


async def expect_done_and_closed(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    """`text` was carried out: the socket (of the session that changed) is closed with
    4001, after an "ok" if the handler got to send it first."""
    msg = await ask(ws, text)
    if msg.type is WSMsgType.TEXT:
        assert msg.data == "ok"
        msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001), msg


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis"])
@pytest.mark.parametrize("style", STYLES)
async def test_forget_over_a_websocket_logs_out_for_real_with_a_server_side_storage(
    style: str, devices: Devices, redis_client: Any
) -> None:
    _app, browsers = await devices(style=style)
    browser = await browsers()
    await login_with_pre_login_session(browser)
    logged_in = browser.cookie()
    assert logged_in is not None
    other_ws, seen = await browser.ws()
    assert seen == "alice"
    auth_ws = await browser.client.ws_connect("/ws-auth")

    await expect_done_and_closed(auth_ws, "logout")
    await expect_closed(other_ws)
    assert browser.cookie() == logged_in  # no cookie could change...
    assert await browser.whoami() is None  # ...and yet the browser is logged out
    assert await replay_user(browser, logged_in) is None
    again, seen = await browser.ws()  # a reconnect is served (anonymous), not refused
    assert seen is None
    await expect_open(again)


@pytest.mark.parametrize(
    ("kind", "policy"),
    [
        ("cookie", "session"),
        ("cookie", "cookies"),
        pytest.param("redis", "cookies", marks=pytest.mark.redis),
        pytest.param("redis", "jwt", marks=pytest.mark.redis),
    ],
)
@pytest.mark.parametrize("style", STYLES)
async def test_forget_over_a_websocket_raises_before_anything_changes_where_it_cannot(
    kind: str, policy: str, style: str, devices: Devices
) -> None:
    app, browsers = await devices(policy=policy, style=style)
    registry = app[REGISTRY_KEY]
    browser = await browsers()
    await login_with_pre_login_session(browser)
    other_ws, seen = await browser.ws()
    assert seen == "alice"
    auth_ws = await browser.client.ws_connect("/ws-auth", headers=browser.headers)
    revoked = registry.stats()["revoked"]

    msg = await ask(auth_ws, "logout")
    assert msg.type is WSMsgType.TEXT and msg.data.startswith("error: RuntimeError"), msg
    assert "HTTP" in msg.data and "Nothing was changed" in msg.data
    await expect_open(auth_ws)
    await expect_open(other_ws)
    assert registry.stats()["revoked"] == revoked
    assert await browser.whoami() == "alice"
    again, seen = await browser.ws()
    assert seen == "alice"
    await expect_open(again)


@pytest.mark.parametrize("style", STYLES)
async def test_remember_over_a_websocket_with_rotation_raises_before_anything_changes(
    kind: str, style: str, devices: Devices
) -> None:
    _app, browsers = await devices(style=style)
    browser = await browsers()
    async with browser.client.get("/form") as resp:
        assert resp.status == 200
    anon_ws, seen = await browser.ws()
    assert seen is None
    auth_ws = await browser.client.ws_connect("/ws-auth")

    msg = await ask(auth_ws, "login:alice")
    assert msg.type is WSMsgType.TEXT and msg.data.startswith("error: RuntimeError"), msg
    assert "Nothing was changed" in msg.data
    await expect_open(auth_ws)
    await expect_open(anon_ws)
    assert await browser.whoami() is None


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis"])
@pytest.mark.parametrize("style", ["wrapped", "dropin"])
async def test_remember_over_a_websocket_without_rotation_logs_in_for_real(
    style: str, devices: Devices, redis_client: Any
) -> None:
    _app, browsers = await devices(style=style, rotate_session=False)
    browser = await browsers()
    async with browser.client.get("/form") as resp:
        assert resp.status == 200
    cookie = browser.cookie()
    anon_ws, seen = await browser.ws()
    auth_ws = await browser.client.ws_connect("/ws-auth")

    await expect_done_and_closed(auth_ws, "login:alice")
    await expect_closed(anon_ws)
    assert browser.cookie() == cookie
    assert await browser.whoami() == "alice"
    alice_ws, seen = await browser.ws()
    assert seen == "alice"
    await expect_open(alice_ws)


async def test_forget_on_a_response_already_sent_logs_out_for_real_or_raises(
    kind: str, devices: Devices
) -> None:
    """The same rule for a stream whose headers are sent (e.g. server-sent events)."""
    _app, browsers = await devices()
    browser = await browsers()
    await login_with_pre_login_session(browser)
    user_ws, _ = await browser.ws()
    async with browser.client.post("/stream-logout") as resp:
        answer = await resp.text()
    if kind == "redis":
        assert answer == "ok"
        await expect_closed(user_ws)
        assert await browser.whoami() is None
    else:
        assert answer.startswith(
            "error: RuntimeError: forget() cannot run on a StreamResponse already sent"
        )
        await expect_open(user_ws)
        assert await browser.whoami() == "alice"


@pytest.mark.parametrize("kind", ["cookie"])
async def test_the_error_names_what_to_do(devices: Devices) -> None:
    """The message of the refusal, as a user reads it."""
    _app, browsers = await devices()
    browser = await browsers()
    await browser.login("alice")
    auth_ws = await browser.client.ws_connect("/ws-auth")
    msg = await ask(auth_ws, "logout")
    assert msg.type is WSMsgType.TEXT, msg
    assert "forget() cannot run on a websocket" in msg.data
    assert "RedisStorage" in msg.data and "POST" in msg.data


# -- 5. a login or logout carrying an older cookie of the same browser ---------------------
#
# The browser's jar takes the cookie of whichever response arrives last. A login or
# logout that left the browser before another login (a stale tab, two logins in one
# browser) sets its cookie over the newer login's: the registry remembers which
# session replaced which (`supersede`) and ends the newer ones, sockets included.


async def login_from(stale: StaleTab, user: str) -> None:
    async with stale.http.post(stale.url("/login"), json={"user": user}) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_stale_tabs_logout_after_a_login_elsewhere_closes_the_newer_login(
    kind: str, devices: Devices
) -> None:
    _app, browsers = await devices()
    browser: Browser = await browsers()
    await login_with_pre_login_session(browser, "alice")
    as_alice = browser.cookie()
    assert as_alice is not None
    await browser.login("bob")  # another tab logs in as bob over alice
    bob_ws, seen = await browser.ws()
    assert seen == "bob"
    async with (
        StaleTab(browser, as_alice) as stale,  # alice's logout, sent before that login
        stale.http.post(stale.url("/logout")) as resp,
    ):
        assert resp.status == 200
    assert await browser.whoami() is None  # the browser is logged out...
    await expect_closed(bob_ws)  # ...and so is bob's socket in it


async def test_two_logins_from_one_cookie_leave_no_socket_of_the_first(
    kind: str, devices: Devices
) -> None:
    _app, browsers = await devices()
    browser: Browser = await browsers()
    async with browser.client.get("/form") as resp:
        assert resp.status == 200
    pre_login = browser.cookie()
    assert pre_login is not None
    async with StaleTab(browser, pre_login) as tab_a, StaleTab(browser, pre_login) as tab_b:
        await login_from(tab_a, "alice")  # tab A's login answers first
        alice_ws, seen = await browser.ws()  # the tabs reconnect as alice
        assert seen == "alice"
        await login_from(tab_b, "bob")  # tab B's login (same pre-login cookie) answers last
    assert await browser.whoami() == "bob"
    await expect_closed(alice_ws)
    bob_ws, seen = await browser.ws()
    assert seen == "bob"
    await expect_open(bob_ws)
    await browser.logout()
    await expect_closed(bob_ws)


async def test_two_logins_in_flight_at_once_end_both_and_the_next_login_works(
    kind: str, devices: Devices
) -> None:
    """Two logins from one cookie, both in flight at once: no one can tell which
    response the browser's jar keeps, so both sessions end (fail closed) and the
    browser logs in again."""
    app, browsers = await devices()
    browser: Browser = await browsers()
    async with browser.client.get("/form") as resp:
        assert resp.status == 200
    pre_login = browser.cookie()
    assert pre_login is not None
    async with StaleTab(browser, pre_login) as tab_a, StaleTab(browser, pre_login) as tab_b:

        async def slow_login() -> None:
            url = tab_a.url("/slow-login")
            async with tab_a.http.post(url, json={"user": "alice"}) as resp:
                assert resp.status == 200, await resp.text()

        alice = asyncio.create_task(slow_login())  # reads the session, then waits
        await asyncio.sleep(0.05)
        await login_from(tab_b, "bob")  # answers while alice's login is in flight
        bob_ws, seen = await browser.ws()
        assert seen == "bob"
        await alice  # answers last: the browser's jar takes alice's cookie
    assert await browser.whoami() == "alice"
    await expect_closed(bob_ws)
    await expect_refused(browser)  # alice's session was ended too
    assert app[REGISTRY_KEY].stats()["superseded"] == 2
    await browser.login("alice")
    alice_ws, seen = await browser.ws()
    assert seen == "alice"
    await expect_open(alice_ws)
    await browser.logout()
    await expect_closed(alice_ws)


async def expect_refused(browser: Browser) -> None:
    """The browser's next socket is closed at once with 4001."""
    ws = await browser.client.ws_connect("/ws")
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and ws.close_code == 4001, msg


async def test_a_stale_logout_ends_every_session_that_followed_in_that_browser(
    kind: str, devices: Devices
) -> None:
    """alice -> bob -> anonymous in one browser, then alice's stale logout: the
    anonymous session's socket (the browser's latest) and bob's are both ended."""
    app, browsers = await devices()
    browser: Browser = await browsers()
    await login_with_pre_login_session(browser, "alice")
    as_alice = browser.cookie()
    assert as_alice is not None
    await browser.login("bob")
    bob_ws, _ = await browser.ws()
    bob_tab = browser.cookie()
    assert bob_tab is not None
    await browser.logout()
    await expect_closed(bob_ws)
    anonymous_ws, seen = await browser.ws()
    assert seen is None
    async with StaleTab(browser, as_alice) as stale, stale.http.post(stale.url("/logout")) as resp:
        assert resp.status == 200
    await expect_closed(anonymous_ws)
    assert app[REGISTRY_KEY].stats()["superseded"] == 2  # bob's, then the anonymous one
    assert await browser.whoami() is None
    fresh_ws, seen = await browser.ws()  # the browser's cookie now is the stale response's
    assert seen is None
    await expect_open(fresh_ws)
    await browser.login("carol")
    await expect_closed(fresh_ws)


async def test_ordinary_logins_logouts_and_stale_reads_supersede_nothing(
    kind: str, devices: Devices
) -> None:
    """No false alarm: requests with older cookies that set none (reads, sockets,
    a slow writer) end nothing; each login and logout ends only its own session."""
    app, browsers = await devices()
    browser: Browser = await browsers()
    pre_login = await login_with_pre_login_session(browser, "alice")
    alice_ws, _ = await browser.ws()
    async with StaleTab(browser, pre_login) as stale:
        async with stale.http.get(stale.url("/whoami")) as resp:
            assert resp.status == 200
        async with stale.http.post(stale.url("/slow-write")) as resp:
            assert resp.status == 200
        assert stale.set_cookies == []
    await expect_open(alice_ws)
    await browser.logout()
    await expect_closed(alice_ws)
    await browser.login("bob")
    bob_ws, seen = await browser.ws()
    assert seen == "bob"
    await expect_open(bob_ws)
    assert app[REGISTRY_KEY].stats()["superseded"] == 0


async def test_a_login_in_flight_while_a_stale_logout_ends_its_session_ends_too(
    kind: str, devices: Devices
) -> None:
    """alice, then bob over her in one browser. A tab of bob's sends a (slow) login as
    carol; while it is in flight, alice's stale logout ends bob's session. The two
    responses race to the jar, so carol's session is ended too (fail closed); a
    login sent after that works at once."""
    app, browsers = await devices()
    browser: Browser = await browsers()
    await login_with_pre_login_session(browser, "alice")
    as_alice = browser.cookie()
    await browser.login("bob")
    as_bob = browser.cookie()
    assert as_alice is not None and as_bob is not None
    async with StaleTab(browser, as_bob) as bobs_tab, StaleTab(browser, as_alice) as stale:

        async def slow_login() -> None:
            url = bobs_tab.url("/slow-login")
            async with bobs_tab.http.post(url, json={"user": "carol"}) as resp:
                assert resp.status == 200, await resp.text()

        carol = asyncio.create_task(slow_login())
        await asyncio.sleep(0.05)
        async with stale.http.post(stale.url("/logout")) as resp:
            assert resp.status == 200
        await carol
    assert await browser.whoami() == "carol"
    await expect_refused(browser)
    # bob's session; then carol's, and the stale logout's (the jar took carol's after it)
    assert app[REGISTRY_KEY].stats()["superseded"] == 3
    await browser.login("carol")  # sent after the end: not ended
    carol_ws, seen = await browser.ws()
    assert seen == "carol"
    await expect_open(carol_ws)


async def test_a_login_sent_after_its_session_was_superseded_is_not_ended(
    kind: str, devices: Devices
) -> None:
    """A browser left holding a superseded session (it got that response last) logs
    in again at once: the new session is not ended, and the session that had
    superseded it (no longer in the jar) is."""
    app, browsers = await devices()
    browser: Browser = await browsers()
    await login_with_pre_login_session(browser, "alice")
    as_alice = browser.cookie()
    await browser.login("bob")
    as_bob = browser.cookie()
    assert as_alice is not None and as_bob is not None
    async with StaleTab(browser, as_alice) as stale, stale.http.post(stale.url("/logout")) as resp:
        assert resp.status == 200
    anonymous_ws, seen = await browser.ws()  # a tab, with the stale logout's cookie
    assert seen is None
    async with StaleTab(browser, as_bob) as late:  # the jar got bob's cookie back, last
        await login_from(late, "carol")
    assert await browser.whoami() == "carol"
    await expect_closed(anonymous_ws)  # the stale logout's session is gone from the jar
    carol_ws, seen = await browser.ws()
    assert seen == "carol"
    await expect_open(carol_ws)
    # bob's session, then the stale logout's, whose cookie the jar no longer holds
    assert app[REGISTRY_KEY].stats()["superseded"] == 2


@pytest.mark.redis
async def test_two_nodes_superseding_one_session_at_once_see_each_other(redis_url: str) -> None:
    """The lineage swap is atomic in Redis: of two nodes recording a successor for one
    retired id at the same moment, exactly one learns of the other's."""
    async with running(redis_nodes(redis_url, "AB")) as (node_a, node_b):
        a, b = node_a.registry, node_b.registry
        for round_ in range(50):
            retired = f"retired-{round_}"
            found = await asyncio.gather(
                a.swap_successor(retired, Link(f"a-{round_}", 1.0)),
                b.swap_successor(retired, Link(f"b-{round_}", 2.0)),
            )
            assert found in (
                [None, Link(f"a-{round_}", 1.0)],
                [Link(f"b-{round_}", 2.0), None],
            ), found


def cluster_nodes(redis_url: str, storage: str) -> list[Served]:
    """Two Redis nodes sharing one Redis; sessions in EncryptedCookieStorage or in
    RedisStorage on that same Redis."""
    if storage == "cookie":
        return redis_nodes(redis_url, "AB")
    from aiohttp_session.redis_storage import RedisStorage
    from redis.asyncio import Redis

    channel = f"asws-{uuid.uuid4().hex[:8]}"
    nodes = []
    for name in "AB":
        client = Redis.from_url(redis_url)
        registry = RedisSessionWSRegistry(
            Redis.from_url(redis_url), channel=channel, node_id=name, **FAST
        )
        nodes.append(Served(registry, RedisStorage(client), redis_clients=[client]))
    return nodes


async def alice_then_bob(
    http: aiohttp.ClientSession, node_a: Served, bob_on: Served
) -> tuple[str, str, aiohttp.ClientWebSocketResponse]:
    """Log the browser (`http`, with its jar) in as alice on `node_a`, then as bob over
    her on `bob_on`, and open bob's socket on `node_a`. Returns alice's cookie, bob's,
    and bob's socket."""
    cookies: list[str] = []
    for user, node in (("alice", node_a), ("bob", bob_on)):
        async with http.post(node.url / "login", json={"user": user}) as resp:
            assert resp.status == 200
        cookies.append(http.cookie_jar.filter_cookies(node_a.url)[COOKIE].value)
    bob_ws = await http.ws_connect(node_a.url / "ws")
    assert (await bob_ws.receive_json(timeout=5))["user"] == "bob"
    return cookies[0], cookies[1], bob_ws


@pytest.mark.redis
@pytest.mark.parametrize("storage", ["cookie", "redis"])
@pytest.mark.parametrize("newer_login_on", ["A", "B"])
async def test_a_stale_logout_on_another_redis_node_closes_the_newer_login(
    redis_url: str, storage: str, newer_login_on: str
) -> None:
    """bob's login over alice's session on node A or B, bob's socket on A, alice's
    stale logout on B: B finds bob's session through Redis (or its own memory)."""
    async with running(cluster_nodes(redis_url, storage)) as (node_a, node_b):
        newer = node_a if newer_login_on == "A" else node_b
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            as_alice, _, bob_ws = await alice_then_bob(http, node_a, newer)
            stale = {"Cookie": f"{COOKIE}={as_alice}"}  # alice's logout, sent before that login
            async with (
                aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as old,
                old.post(node_b.url / "logout", headers=stale) as resp,
            ):
                assert resp.status == 200
                jar.update_cookies(resp.cookies, resp.url)
            async with http.get(node_a.url / "whoami") as resp:
                assert (await resp.json())["user"] is None  # the browser is logged out...
            await expect_closed(bob_ws)  # ...and so is bob's socket in it
            assert node_b.registry.stats()["superseded"] == 1


@pytest.mark.redis
async def test_with_redis_down_a_stale_login_is_refused_and_a_fresh_one_goes_through(
    redis_url: str, redis_server: RedisServer
) -> None:
    """Node B cannot look up what replaced a retired session while Redis is down: a
    login sent with a cookie it knows is retired gets 503 and changes nothing
    (counted); a login from a cookie that is not retired goes through."""
    async with running(redis_nodes(redis_url, "AB")) as (node_a, node_b):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            # both on A: B does not know bob's session
            as_alice, as_bob, bob_ws = await alice_then_bob(http, node_a, node_a)
            await until(lambda: node_b.registry.stats()["revoked"] >= 1)  # B heard the close
            redis_server.kill()
            try:
                stale = {"Cookie": f"{COOKIE}={as_alice}"}
                async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as old:
                    url = node_b.url / "login"
                    async with old.post(url, json={"user": "carol"}, headers=stale) as resp:
                        assert resp.status == 503, await resp.text()
                        assert COOKIE not in resp.cookies  # nothing saved
                    assert node_b.registry.stats()["refused"]["lineage_unknown"] == 1
                    async with old.post(url, json={"user": "dave"}) as resp:  # no cookie
                        assert resp.status == 200, await resp.text()
                        assert COOKIE in resp.cookies
                await expect_open(bob_ws)
                assert jar.filter_cookies(node_a.url)[COOKIE].value == as_bob
            finally:
                redis_server.start()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition()` holds (checked every 20 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
