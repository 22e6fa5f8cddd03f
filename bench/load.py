"""The load generator: aiohttp's client, loopback only, every wait bounded."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from yarl import URL

CONNECT_CONCURRENCY = 64


def client() -> aiohttp.ClientSession:
    """A client with no cookie jar (cookies are passed per request) and no pool limit."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def login(http: aiohttp.ClientSession, base: URL) -> str:
    """Start a session; return its Cookie header value."""
    async with http.get(base / "login") as response:
        response.raise_for_status()
        await response.read()
        return "; ".join(f"{m.key}={m.coded_value}" for m in response.cookies.values())


async def bounded_gather(
    factories: Sequence[Callable[[], Awaitable[Any]]], limit: int = CONNECT_CONCURRENCY
) -> list[Any]:
    """Run the coroutine factories with at most `limit` in flight, keeping order."""
    gate = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await factory()

    return await asyncio.gather(*(one(f) for f in factories))


async def open_sockets(
    http: aiohttp.ClientSession, urls: Sequence[URL], cookie: str
) -> list[aiohttp.ClientWebSocketResponse]:
    """Open one websocket per URL, all presenting `cookie`."""
    headers = {"Cookie": cookie}
    return await bounded_gather(
        [partial(http.ws_connect, url, headers=headers, autoping=False) for url in urls]
    )


async def open_sessions(
    http: aiohttp.ClientSession, base: URL, sessions: int, per_session: int
) -> tuple[list[str], list[aiohttp.ClientWebSocketResponse]]:
    """Start `sessions` sessions with `per_session` sockets each; return cookies and sockets."""
    cookies = await bounded_gather([lambda: login(http, base)] * sessions)
    groups = await bounded_gather(
        [partial(open_sockets, http, [base / "ws"] * per_session, c) for c in cookies],
        limit=max(1, CONNECT_CONCURRENCY // per_session),
    )
    return cookies, [ws for group in groups for ws in group]


async def connect_close(http: aiohttp.ClientSession, url: URL, cookie: str) -> None:
    """One websocket connect+close cycle."""
    ws = await http.ws_connect(url, headers={"Cookie": cookie}, autoping=False)
    await ws.close()


class CloseWatcher:
    """Records when each socket receives the server's CLOSE frame."""

    def __init__(self, sockets: Sequence[aiohttp.ClientWebSocketResponse]) -> None:
        self.times: list[float] = []
        self.tasks = [asyncio.ensure_future(self._watch(ws)) for ws in sockets]

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        msg = await ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            self.times.append(time.perf_counter())
        await ws.close()

    async def wait(self, timeout: float) -> int:
        """Wait (at most `timeout` s) for every socket; return how many saw CLOSE."""
        _, pending = await asyncio.wait(self.tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return len(self.times)


async def reset(http: aiohttp.ClientSession, base: URL, cookie: str, path: str = "reset") -> float:
    """GET the reset URL; return the perf_counter time its whole response arrived."""
    async with http.get(base / path, headers={"Cookie": cookie}) as response:
        response.raise_for_status()
        await response.read()
    return time.perf_counter()


async def timed_reset(
    login_on: URL,
    reset_on: URL,
    ws_on: Sequence[URL],
    n: int,
    reset_path: str = "reset",
    server_cpu: bool = False,
) -> dict[str, Any]:
    """One session with `n` sockets round-robin over the `ws_on` servers; reset it on
    `reset_on`; time from the reset response to the last socket seeing CLOSE.

    With `server_cpu`, also `reset_on`'s CPU time from just before the reset to the
    last CLOSE, per socket (meaningful when all sockets are on that server)."""
    cpu_us = math.nan
    async with client() as http:
        cookie = await login(http, login_on)
        urls = [ws_on[i % len(ws_on)] for i in range(n)]
        sockets = await open_sockets(http, urls, cookie)
        watcher = CloseWatcher(sockets)
        cpu_before = (await stats(http, reset_on))["cpu"] if server_cpu else 0.0
        t_response = await reset(http, reset_on, cookie, reset_path)
        closed = await watcher.wait(timeout=10 + n / 200)
        if server_cpu:
            cpu_us = ((await stats(http, reset_on))["cpu"] - cpu_before) / n * 1e6
        await close_all(sockets)
    last = max(watcher.times) if watcher.times else math.nan
    return {"delay": last - t_response, "closed": closed, "n": n, "cpu_us": cpu_us}


async def stats(http: aiohttp.ClientSession, base: URL, gc: bool = False) -> dict[str, Any]:
    """The server's /stats (RSS, CPU time, registry stats when it has them)."""
    async with http.get(base / "stats", params={"gc": "1"} if gc else {}) as response:
        response.raise_for_status()
        result: dict[str, Any] = await response.json()
        return result


async def close_all(sockets: Sequence[aiohttp.ClientWebSocketResponse]) -> None:
    """Close client sockets (bounded per socket by aiohttp's close timeout)."""
    await bounded_gather([ws.close for ws in sockets], limit=256)


async def wait_for_server(
    http: aiohttp.ClientSession, base: URL, check: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """Poll /stats until `check` holds or `timeout` passes; return the last stats."""
    deadline = time.monotonic() + timeout
    while True:
        current = await stats(http, base)
        if check(current) or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.05)
