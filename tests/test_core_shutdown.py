"""Shutdown: every socket gets 1001, bounded in time, scheduled closes finish first."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import aiohttp
from aiohttp import WSMsgType, web

from aiohttp_session_ws import (
    REGISTRY_KEY,
    SESSION_ENDED_CODE,
    SHUTDOWN_CODE,
    SessionWSRegistry,
    schedule_close_all_session_ws,
)
from tests.core_app import make_app


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def silent_client(
    port: int, path: str = "/ws"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client that completes the handshake and then never reads."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 101 " in status, status
    return reader, writer


async def test_shutdown_sends_1001_and_is_bounded_with_silent_peers() -> None:
    app = make_app(SessionWSRegistry(close_timeout=0.5))
    runner, url = await start(app)
    port = int(url.rsplit(":", 1)[1])
    registry = app[REGISTRY_KEY]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        listeners = [await http.ws_connect(f"{url}/ws") for _ in range(5)]
        silent = [await silent_client(port) for _ in range(5)]
        while registry.stats()["sockets"] < 10:
            await asyncio.sleep(0.01)

        async def read_close(ws: aiohttp.ClientWebSocketResponse) -> int | None:
            msg = await ws.receive(timeout=10)
            while msg.type is not WSMsgType.CLOSE:
                msg = await ws.receive(timeout=10)
            return int(msg.data)

        readers = [asyncio.ensure_future(read_close(ws)) for ws in listeners]
        started = time.monotonic()
        await runner.cleanup()
        elapsed = time.monotonic() - started
        codes = await asyncio.gather(*readers)
    assert codes == [SHUTDOWN_CODE] * 5
    assert [ws.close_code for ws in listeners] == [SHUTDOWN_CODE] * 5  # a clean close
    # The silent peers got a close frame too (1001 = 0x03E9), then had their transport dropped.
    for reader, writer in silent:
        data = await asyncio.wait_for(reader.read(), 5)
        assert b"\x88" in data and b"\x03\xe9" in data
        writer.close()
    # Without the per-socket bound, aiohttp would wait its 10 s close timeout per silent peer.
    assert elapsed < 5, elapsed
    assert registry.stats()["closed"]["shutdown"] == 10


async def test_shutdown_waits_for_scheduled_closes() -> None:
    app = make_app()
    runner, url = await start(app)
    registry = app[REGISTRY_KEY]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await http.get(f"{url}/id")
        ws = await http.ws_connect(f"{url}/ws")
        await ws.receive_json()
        # The client reads (and so answers the close) while the server shuts down.
        reader = asyncio.ensure_future(ws.receive(timeout=5))
        resp = await http.get(f"{url}/reset")
        await resp.read()
        await runner.cleanup()
        assert registry.stats()["pending_closes"] == 0
        msg = await reader
        assert msg.type is WSMsgType.CLOSE
        assert ws.close_code in (SESSION_ENDED_CODE, SHUTDOWN_CODE)
        # Whichever ran first, the socket was closed exactly once.
        closed = registry.stats()["closed"]
        assert closed.get("session_ended", 0) + closed.get("shutdown", 0) == 1


async def test_a_scheduled_close_cut_short_by_shutdown_is_counted_once() -> None:
    """Shutdown stops waiting for scheduled closes after `close_timeout`: one that was
    still waiting for its peer's Close (it began late: its response was slow) was
    cancelled and counted nowhere. Every socket the library closes counts once."""
    entered = asyncio.Event()

    async def slow_reset(request: web.Request) -> web.Response:
        response = web.Response(text="reset")
        await schedule_close_all_session_ws(request, response)
        entered.set()
        await asyncio.sleep(0.5)  # the close starts once this response is delivered
        return response

    app = make_app(SessionWSRegistry(close_timeout=2.0))
    app.router.add_get("/slow-reset", slow_reset)
    runner, url = await start(app)
    registry = app[REGISTRY_KEY]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await http.get(f"{url}/id")
        silent = await http.ws_connect(f"{url}/ws")  # never reads: never answers the Close
        other = await http.ws_connect(f"{url}/ws")
        await other.receive_json(timeout=5)
        while registry.stats()["sockets"] < 2:
            await asyncio.sleep(0.01)
        reset = asyncio.ensure_future(http.get(f"{url}/slow-reset"))
        await asyncio.wait_for(entered.wait(), 5)
        await runner.cleanup()  # waits 2 s for the close, which needs until ~2.5 s
        (await reset).close()
        closed = registry.stats()["closed"]
        assert sum(closed.values()) == 2, closed
        assert closed["session_ended"] == 2, closed  # the frame the clients were sent
        msg = await silent.receive(timeout=5)
        while msg.type is WSMsgType.TEXT:  # its greeting, unread until now
            msg = await silent.receive(timeout=5)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, SESSION_ENDED_CODE), msg
