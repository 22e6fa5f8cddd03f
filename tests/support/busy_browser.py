"""A busy browser logging in and out against one node or two Redis-backed nodes.

One device (one cookie jar) with `RECONNECTING` tabs that keep a socket open and
reconnect at once whenever it closes, and `CHURNING` tabs that open and drop
sockets and send XHRs (reads, CSRF writes, slow session writes) in a tight loop.
A round: load the login form (the pre-login session K0), log in (K1), replay
requests that left before the login (still carrying K0: HTTP and websocket),
start session writes that are in flight during the logout, log out (K2), then
count the survivors 0.7 s after the logout response: sockets still serving the
user (server side: open and indexed under the user; client side: greeted as the
user and not closed), and whether the browser, once every request has
returned, is still logged in (its jar, and with RedisStorage the K1 record).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from redis.asyncio import Redis
from yarl import URL

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from tests.support.cluster import FAST
from tests.support.security_app import COOKIE_KEY
from tests.support.security_nodes import Served, running
from tests.support.sessions_app import add_session_routes

COOKIE = "AIOHTTP_SESSION"
USER = "alice"
RECONNECTING = 20
CHURNING = 10
IN_FLIGHT_WRITERS = 3
SURVIVOR_DEADLINE = 0.7
"""Seconds after the logout response by which no socket may serve the user."""


def busy_node(registry: SessionWSRegistry, storage: str, redis_url: str | None) -> Served:
    """An unstarted node: the security app on `storage` ("redis": RedisStorage on its
    own client; "cookie": EncryptedCookieStorage) with the session test routes."""
    clients: list[Redis] = []
    if storage == "redis":
        assert redis_url is not None
        clients.append(Redis.from_url(redis_url))
        session_storage: Any = RedisStorage(clients[0])
    else:
        session_storage = EncryptedCookieStorage(COOKIE_KEY)
    node = Served(registry, session_storage, clients)
    add_session_routes(node.runner.app, "wrapped")
    return node


@asynccontextmanager
async def busy_nodes(
    storage: str, nodes: int, redis_url: str | None
) -> AsyncIterator[list[Served]]:
    """Started nodes on `storage`: one with the in-memory registry, or several with
    `RedisSessionWSRegistry` on one channel."""
    if nodes == 1:
        served = [busy_node(SessionWSRegistry(), storage, redis_url)]
    else:
        assert redis_url is not None
        channel = f"asws-{uuid.uuid4().hex[:8]}"
        served = [
            busy_node(
                RedisSessionWSRegistry(
                    Redis.from_url(redis_url), channel=channel, node_id=name, **FAST
                ),
                storage,
                redis_url,
            )
            for name in "AB"[:nodes]
        ]
    async with running(served) as started:
        yield started


@dataclass
class RoundResult:
    sockets_opened: int = 0
    user_sockets_opened: int = 0
    server_survivors: int = 0
    client_survivors: int = 0
    logged_in_after: bool = False
    record_revived: bool = False
    stale_set_cookies: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return bool(
            self.server_survivors
            or self.client_survivors
            or self.logged_in_after
            or self.record_revived
        )


class Tab:
    """The state of one reconnecting tab: its current socket and whom it was greeted as."""

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.greeted: str | None = None

    def serving_user(self) -> bool:
        return self.ws is not None and not self.ws.closed and self.greeted == USER


class Device:
    """One browser: a cookie jar shared by every tab, talking to any of `nodes`."""

    def __init__(self, nodes: list[Served], rng: random.Random) -> None:
        self.nodes = nodes
        self.rng = rng
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.http = aiohttp.ClientSession(
            cookie_jar=self.jar, connector=aiohttp.TCPConnector(limit=0)
        )
        self.result = RoundResult()
        self.stop = asyncio.Event()
        self._node_cycle = itertools.cycle(nodes)

    def url(self, path: str, node: Served | None = None) -> URL:
        return (node or next(self._node_cycle)).url.join(URL(path))

    def cookie(self) -> str | None:
        morsel = self.jar.filter_cookies(self.nodes[0].url).get(COOKIE)
        return None if morsel is None else morsel.value

    async def close(self) -> None:
        await self.http.close()

    # -- requests ------------------------------------------------------------------

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.url(path), **kwargs) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            return await resp.json()

    async def connect(self, http: aiohttp.ClientSession | None = None) -> tuple[Any, str | None]:
        """Open /ws; return the socket and the user it was greeted as (None if refused)."""
        ws = await (http or self.http).ws_connect(self.url("/ws"))
        msg = await ws.receive(timeout=10)
        self.result.sockets_opened += 1
        if msg.type is not WSMsgType.TEXT:
            return ws, None  # refused: closed at once
        greeted: str | None = msg.json()["user"]
        if greeted == USER:
            self.result.user_sockets_opened += 1
        return ws, greeted

    # -- tabs ----------------------------------------------------------------------

    async def reconnecting(self, tab: Tab) -> None:
        """Keep one socket open; reconnect at once whenever it closes."""
        while not self.stop.is_set():
            ws, tab.greeted = await self.connect()
            tab.ws = ws
            while not ws.closed and not self.stop.is_set():
                with suppress(asyncio.TimeoutError):
                    msg = await ws.receive(timeout=0.05)
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
            await ws.close()

    async def churning(self) -> None:
        """Open and drop sockets, and send XHRs, in a tight loop."""
        while not self.stop.is_set():
            action = self.rng.randrange(4)
            if action == 0:
                ws, _ = await self.connect()
                await asyncio.sleep(self.rng.uniform(0, 0.01))
                await ws.close()
            elif action == 1:
                await self.json("GET", "/whoami")
            elif action == 2:
                await self.json("GET", "/form")
            else:
                await self.json("POST", "/slow-write")

    async def stale(self, pre_login: str) -> None:
        """Requests that left before the login (they carry K0): whatever cookie their
        responses set lands in the device's jar, as it does in a browser."""
        jar = aiohttp.CookieJar(unsafe=True)
        jar.update_cookies({COOKIE: pre_login}, self.nodes[0].url)
        trace = aiohttp.TraceConfig()

        async def on_response(session: Any, context: Any, params: Any) -> None:
            response: aiohttp.ClientResponse = params.response
            self.result.stale_set_cookies += response.headers.getall("Set-Cookie", [])
            self.jar.update_cookies(response.cookies, response.url)

        trace.on_request_end.append(on_response)
        async with aiohttp.ClientSession(cookie_jar=jar, trace_configs=[trace]) as stale:
            ws, greeted = await self.connect(stale)
            assert greeted != USER, "a request carrying the pre-login cookie was served as the user"
            await ws.close()
            async with stale.get(self.url("/whoami")) as resp:
                assert resp.status == 200
                assert (await resp.json())["user"] is None
            async with stale.post(self.url("/slow-write")) as resp:
                assert resp.status == 200


async def until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def tear_down(device: Device, workers: list[asyncio.Task[Any]], tabs: list[Tab]) -> None:
    """Stop the device's tabs and workers, close their sockets and the device."""
    device.stop.set()
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for tab in tabs:
        if tab.ws is not None:
            await tab.ws.close()
    await device.close()


async def busy_round(nodes: list[Served], round_: int, redis: Redis | None) -> RoundResult:
    """One login-then-logout round of a busy browser; see the module docstring."""
    device = Device(nodes, random.Random(round_))
    tabs = [Tab() for _ in range(RECONNECTING)]
    workers: list[asyncio.Task[Any]] = []
    try:
        await device.json("GET", "/form")
        pre_login = device.cookie()
        assert pre_login is not None
        workers += [asyncio.ensure_future(device.reconnecting(tab)) for tab in tabs]
        workers += [asyncio.ensure_future(device.churning()) for _ in range(CHURNING)]
        await asyncio.sleep(0.05 * (round_ % 3))

        await device.json("POST", "/login", json={"user": USER})
        logged_in = device.cookie()
        assert logged_in not in (None, pre_login)
        stale = [asyncio.ensure_future(device.stale(pre_login)) for _ in range(3)]
        assert await until(lambda: sum(t.serving_user() for t in tabs) >= RECONNECTING // 2, 15)

        writers = [
            asyncio.ensure_future(device.json("POST", "/slow-write"))
            for _ in range(IN_FLIGHT_WRITERS)
        ]
        await asyncio.sleep(0.05)
        await device.json("POST", "/logout")
        await asyncio.sleep(SURVIVOR_DEADLINE)
        device.result.server_survivors = sum(len(node.open_sockets(set(), USER)) for node in nodes)
        device.result.client_survivors = sum(tab.serving_user() for tab in tabs)

        device.stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, *writers, *stale), 30)
        device.result.logged_in_after = (await device.json("GET", "/whoami"))["user"] is not None
        if redis is not None and logged_in is not None:
            raw = await redis.get(f"{COOKIE}_{logged_in}")
            device.result.record_revived = raw is not None and USER.encode() in raw
        return device.result
    finally:
        await tear_down(device, workers, tabs)


# -- logins racing logouts in one browser -------------------------------------------

RACERS = ("alice", "bob", "carol")
RACING_TABS = 10


@dataclass
class RaceResult:
    sockets_opened: int = 0
    holder: str | None = None
    """Who the browser is at the end (its jar's cookie)."""
    server_survivors: int = 0
    """Server-side sockets still open for a user the browser no longer is."""
    client_survivors: int = 0
    """Tabs still greeted as a user the browser no longer is, and not closed."""
    locked_out: bool = False
    """The browser's own session was ended too (fail closed): its next socket is refused."""

    @property
    def survived(self) -> bool:
        return bool(self.server_survivors or self.client_survivors)


async def stale_request(device: Device, cookie: str, path: str, body: Any = None) -> None:
    """A POST that left the browser while its jar held `cookie`; the cookie its
    response sets lands in the device's jar, as in a browser."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as old:
        url = device.url(path)
        async with old.post(url, json=body, headers={"Cookie": f"{COOKIE}={cookie}"}) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            device.jar.update_cookies(resp.cookies, resp.url)


async def racing_round(nodes: list[Served], round_: int) -> RaceResult:
    """alice is logged in with tabs reconnecting; then, in a random order with random
    delays, another tab logs in as bob (with the jar's cookie) while stale tabs still
    holding alice's cookie log out and/or log in as carol. 0.7 s after the last
    response no socket may serve a user the browser (its jar) no longer is."""
    rng = random.Random(round_)
    device = Device(nodes, rng)
    tabs = [Tab() for _ in range(RACING_TABS)]
    workers: list[asyncio.Task[Any]] = []
    result = RaceResult()
    try:
        await device.json("GET", "/form")
        await device.json("POST", "/login", json={"user": "alice"})
        as_alice = device.cookie()
        assert as_alice is not None
        workers += [asyncio.ensure_future(device.reconnecting(tab)) for tab in tabs]
        assert await until(lambda: sum(t.greeted == "alice" for t in tabs) >= RACING_TABS // 2, 15)

        async def after(delay: float, action: Awaitable[Any]) -> None:
            await asyncio.sleep(delay)
            await action

        racers: list[Awaitable[Any]] = [device.json("POST", "/login", json={"user": "bob"})]
        stale = rng.choice([["logout"], ["carol"], ["logout", "carol"]])
        for what in stale:
            if what == "logout":
                racers.append(stale_request(device, as_alice, "/logout"))
            else:
                racers.append(stale_request(device, as_alice, "/login", {"user": "carol"}))
        await asyncio.gather(*(after(rng.uniform(0, 0.03), racer) for racer in racers))
        await asyncio.sleep(SURVIVOR_DEADLINE)
        result.holder = (await device.json("GET", "/whoami"))["user"]
        others = [user for user in RACERS if user != result.holder]
        result.server_survivors = sum(
            len(node.open_sockets(set(), user)) for node in nodes for user in others
        )
        result.client_survivors = sum(
            tab.ws is not None and not tab.ws.closed and tab.greeted in others for tab in tabs
        )
        device.stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 30)
        ws, _ = await device.connect()
        result.locked_out = ws.closed  # refused: closed at once instead of greeted
        await ws.close()
        result.sockets_opened = device.result.sockets_opened
        return result
    finally:
        await tear_down(device, workers, tabs)
