"""Three (or more) in-process aiohttp nodes sharing one Redis, and browser-like clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import aiohttp
import aiohttp_session
from aiohttp import WSMsgType, web
from redis.asyncio import Redis
from yarl import URL

from aiohttp_session_ws import (
    ensure_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
    session_ws,
    session_ws_middleware,
    setup,
)
from aiohttp_session_ws.redis import RedisSessionWSRegistry

# Fast settings for tests; production defaults are in the README.
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.1,
    "reconnect_base": 0.05,
    "reconnect_cap": 0.3,
    "redis_timeout": 0.5,
    "ping_interval": 0.2,
    "close_timeout": 1.0,
}
DEAF_BOUND = FAST["ping_interval"] + FAST["redis_timeout"]
"""Seconds to notice a deaf subscription (README: ping_interval + redis_timeout)."""
RECOVERY_BOUND = FAST["reconnect_cap"] + 3 * FAST["redis_timeout"] + FAST["close_timeout"]
"""Seconds from Redis answering again to the last stranded socket closed (README:
reconnect_cap + 3 * redis_timeout + close_timeout)."""


async def identity_keys(request: web.Request) -> list[Hashable]:
    session = await aiohttp_session.get_session(request)
    user = session.get("user")
    return [("identity", user)] if user else []


async def handle_id(request: web.Request) -> web.Response:
    """The session's id, created (with the session) if missing: a page that wants one."""
    return web.json_response({"id": await ensure_session_ws_id(request)})


async def handle_login(request: web.Request) -> web.Response:
    session = await aiohttp_session.get_session(request)
    session["user"] = request.query["user"]
    return web.json_response({"id": await ensure_session_ws_id(request)})


async def handle_reset(request: web.Request) -> web.Response:
    response = web.Response(text="reset")
    await schedule_close_all_session_ws(request, response)
    await new_session_ws_id(request)
    return response


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    async with session_ws(request) as ws:
        async for msg in ws:  # echo, so a test can prove a socket is still open
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
    return ws


def make_app(registry: RedisSessionWSRegistry) -> web.Application:
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app.router.add_get("/id", handle_id)
    app.router.add_get("/login", handle_login)
    app.router.add_get("/reset", handle_reset)
    app.router.add_get("/ws", handle_ws)
    registry.add_key_provider(identity_keys)
    setup(app, registry)
    return app


class Node:
    """One aiohttp server with its own Redis client and registry, on a free port."""

    def __init__(
        self,
        name: str,
        redis_url: str,
        channel: str,
        redis_options: dict[str, Any] | None = None,
        client: Redis | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        self.redis = client or Redis.from_url(redis_url, **(redis_options or {}))
        self.registry = RedisSessionWSRegistry(
            self.redis, channel=channel, node_id=name, **{**FAST, **options}
        )
        self.app = make_app(self.registry)
        self.runner = web.AppRunner(self.app, shutdown_timeout=2.0)
        self.url = URL()

    async def start(self) -> None:
        self.url = await serve(self.runner)

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.redis.aclose()


async def serve(runner: web.AppRunner) -> URL:
    """Set up `runner` on a free loopback port; return its base URL."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return URL.build(scheme="http", host=host, port=port)


async def start_cluster(
    redis_url: str,
    channel: str,
    n: int = 3,
    redis_options: dict[str, Any] | None = None,
    **options: Any,
) -> list[Node]:
    nodes = [Node(name, redis_url, channel, redis_options, **options) for name in "ABCDEFG"[:n]]
    await asyncio.gather(*(node.start() for node in nodes))
    return nodes


class Browser:
    """A client with one cookie jar, talking to any node (cookies ignore the port)."""

    def __init__(self, cookie: str | None = None) -> None:
        headers = {"Cookie": cookie} if cookie else None
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
        )

    async def get_json(self, node: Node, path: str) -> Any:
        async with self.http.get(node.url.join(URL(path))) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def get(self, node: Node, path: str) -> str:
        async with self.http.get(node.url.join(URL(path))) as response:
            assert response.status == 200, await response.text()
            return await response.text()

    async def ws(self, node: Node) -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(node.url.join(URL("/ws")))

    def cookie(self, node: Node) -> str:
        cookies = self.http.cookie_jar.filter_cookies(node.url)
        return "; ".join(f"{m.key}={m.coded_value}" for m in cookies.values())

    async def close(self) -> None:
        await self.http.close()


async def expect_close(
    ws: aiohttp.ClientWebSocketResponse, code: int, timeout: float = 5, *, clean: bool = False
) -> None:
    """The server sent a close frame with `code`; with `clean`, the close completed too.

    An aiohttp client answers a close frame only while something reads it: one
    read only after the server closed (as most tests here do, checking the
    servers first) is dropped after `close_timeout` and reads 1006 as
    `ws.close_code`. Use `closes()` to read as the close happens and check both.
    """
    msg = await ws.receive(timeout=timeout)
    assert msg.type is WSMsgType.CLOSE and msg.data == code, msg
    if clean:
        assert ws.close_code == code, (msg, ws.close_code)


def closes(
    sockets: Iterable[aiohttp.ClientWebSocketResponse], code: int
) -> asyncio.Future[list[None]]:
    """Start reading `sockets` now, as a browser does, and expect each to close with `code`.

    Call it before the close and await it after: the library waits (up to its
    `close_timeout`) for each client to answer its close frame, and an aiohttp
    client answers only while something reads it.
    """
    return asyncio.gather(*(expect_close(ws, code, clean=True) for ws in sockets))


async def expect_open(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_str("ping")
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.TEXT and msg.data == "ping", msg


async def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> float:
    """Poll `check` until true; return the seconds it took, or fail after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def sockets(nodes: Iterable[Node]) -> int:
    return sum(node.registry.stats()["sockets"] for node in nodes)
