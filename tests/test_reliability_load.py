"""Load and dead peers: thousands of sockets reset at once, peers that vanish, shutdown.

Sizes: 5,000 sockets over 500 sessions and a 2,000-socket shutdown at CI size;
10,000 / 1,000 and 4,000 with ASWS_FULL=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from aiohttp_session_ws import (
    REGISTRY_KEY,
    SESSION_ENDED_CODE,
    SHUTDOWN_CODE,
    SessionWSRegistry,
    session_ws,
)
from tests.core_app import make_app
from tests.support.cluster import eventually
from tests.support.load_client import bounded
from tests.support.sizes import raise_fd_limit, size
from tests.test_core_shutdown import silent_client, start

pytestmark = pytest.mark.heavy

T = TypeVar("T")
SESSIONS = size(500, 1_000)
PER_SESSION = 10
LOAD_CLOSE_TIMEOUT = 15.0
SHUTDOWN_SOCKETS = size(2_000, 4_000)
SHUTDOWN_BOUND = 15.0
"""Seconds a shutdown with SHUTDOWN_SOCKETS open (a quarter never reading) may take."""
HEARTBEAT = 1.0
DEAD_PEER_BOUND = 2 * HEARTBEAT + 2.0
"""Seconds until a vanished peer is unregistered: aiohttp pings after `heartbeat` of
silence and gives up `heartbeat / 2` later; the rest is slack for a loaded machine."""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        yield session


async def test_reset_every_session_of_thousands_of_sockets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The clients run in a child process (tests/support/load_client.py): 10,000
    sockets need 20,000 descriptors on one machine, the per-process hard limit."""
    total = SESSIONS * PER_SESSION
    raise_fd_limit(total + 1_000)
    caplog.set_level(logging.INFO)
    # Every socket's close waits for its client's answer: thousands at once from
    # one client process on a shared machine need more than the default 2 s.
    app = make_app(close_timeout=LOAD_CLOSE_TIMEOUT)
    registry = app[REGISTRY_KEY]
    runner, url = await start(app)
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.load_client",
        url,
        str(SESSIONS),
        str(PER_SESSION),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert client.stdin is not None and client.stdout is not None
    try:
        line = await asyncio.wait_for(client.stdout.readline(), 240)
        assert line.decode().strip() == f"open {total}", line
        assert registry.stats()["sockets"] == total and len(registry) == SESSIONS
        client.stdin.write(b"reset\n")
        await client.stdin.drain()
        report = json.loads(await asyncio.wait_for(client.stdout.readline(), 240))
        assert report["errors"] == []
        frames = {(kind, code, extra): n for kind, code, extra, n in report["frames"]}
        assert frames == {(int(WSMsgType.CLOSE), SESSION_ENDED_CODE, "session ended"): total}
        assert await asyncio.wait_for(client.wait(), 60) == 0
        await eventually(lambda: registry.stats()["sockets"] == 0, timeout=30, what="empty")
        assert len(registry) == 0
        assert registry.stats()["closed"] == {"session_ended": total}
        assert registry.stats()["pending_closes"] == 0
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
        await runner.cleanup()
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or "did not" in r.msg]
    assert not noisy, [r.getMessage() for r in noisy[:5]]


def heartbeat_app() -> web.Application:
    app = make_app()

    async def handle(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request, heartbeat=HEARTBEAT) as ws:
            async for _ in ws:
                pass
        return ws

    app.router.add_get("/ws-heartbeat", handle)
    return app


async def test_vanished_peers_are_unregistered_within_the_heartbeat_bound(
    http: aiohttp.ClientSession,
) -> None:
    app = heartbeat_app()
    registry = app[REGISTRY_KEY]
    runner, url = await start(app)
    port = int(url.rsplit(":", 1)[1])
    try:
        # Half-open: handshake, then silence; no FIN, no pong (a peer whose machine
        # vanished looks exactly like this to the server).
        silent = [await silent_client(port, "/ws-heartbeat") for _ in range(20)]
        # Killed: the client's socket is aborted (RST), no close frame.
        killed = [await silent_client(port, "/ws-heartbeat") for _ in range(20)]
        # A live client answers the pings and must stay.
        alive = await http.ws_connect(f"{url}/ws-heartbeat")
        answering = asyncio.ensure_future(alive.receive())  # a reader answers pings
        await eventually(lambda: registry.stats()["sockets"] == 41, what="41 sockets")
        started = time.monotonic()
        for _, writer in killed:
            writer.transport.abort()
        took = await eventually(
            lambda: registry.stats()["sockets"] == 1, timeout=DEAD_PEER_BOUND, what="dead peers"
        )
        assert took <= DEAD_PEER_BOUND
        assert time.monotonic() - started <= DEAD_PEER_BOUND
        await asyncio.sleep(2 * HEARTBEAT)  # the live one answers its pings and stays
        assert registry.stats()["sockets"] == 1 and not alive.closed
        answering.cancel()
        await alive.close()
        for _, writer in silent:
            writer.close()
    finally:
        await runner.cleanup()


async def test_shutdown_with_thousands_of_sockets_a_quarter_never_reading(
    http: aiohttp.ClientSession,
) -> None:
    raise_fd_limit(3 * SHUTDOWN_SOCKETS + 1_000)
    app = make_app(SessionWSRegistry(close_timeout=2.0))
    registry = app[REGISTRY_KEY]
    runner, url = await start(app)
    port = int(url.rsplit(":", 1)[1])
    quiet = SHUTDOWN_SOCKETS // 4
    readers = await bounded(
        [lambda: http.ws_connect(f"{url}/ws") for _ in range(SHUTDOWN_SOCKETS - quiet)]
    )
    silent = await bounded([lambda: silent_client(port) for _ in range(quiet)])
    await eventually(
        lambda: registry.stats()["sockets"] == SHUTDOWN_SOCKETS, timeout=30, what="all open"
    )

    async def last_frame(ws: aiohttp.ClientWebSocketResponse) -> Any:
        msg = await ws.receive(timeout=60)
        while msg.type is WSMsgType.TEXT:
            msg = await ws.receive(timeout=60)
        return msg.type, ws.close_code

    frames = [asyncio.ensure_future(last_frame(ws)) for ws in readers]
    started = time.monotonic()
    await runner.cleanup()
    took = time.monotonic() - started
    received = await asyncio.gather(*frames)
    assert received.count((WSMsgType.CLOSE, SHUTDOWN_CODE)) == len(readers)
    assert registry.stats()["closed"] == {"shutdown": SHUTDOWN_SOCKETS}
    assert registry.stats()["sockets"] == 0
    assert took < SHUTDOWN_BOUND, took
    for ws in readers:
        await ws.close()
    for _, writer in silent:
        writer.close()


def flooding_app(heartbeat: float | None = None) -> web.Application:
    """/flood sends 64 KiB messages for as long as the socket is open."""
    app = make_app(SessionWSRegistry(close_timeout=1.0))

    async def flood(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request, heartbeat=heartbeat) as ws:
            with contextlib.suppress(ConnectionError):
                while not ws.closed:
                    await ws.send_bytes(b"x" * 65536)
        return ws

    app.router.add_get("/flood", flood)
    return app


@pytest.mark.parametrize("heartbeat", [None, HEARTBEAT])
async def test_shutdown_is_bounded_with_handlers_stuck_writing_to_peers_that_never_read(
    heartbeat: float | None,
) -> None:
    """A handler blocked in send (the peer's receive window is full) can outlive its
    socket: once aiohttp's heartbeat gives up it marks the socket closed and closes the
    transport gracefully, which waits for a flush that never comes."""
    app = flooding_app(heartbeat)
    registry = app[REGISTRY_KEY]
    runner, url = await start(app)
    port = int(url.rsplit(":", 1)[1])
    silent = [await silent_client(port, "/flood") for _ in range(20)]
    await eventually(lambda: registry.stats()["sockets"] == 20, what="20 flooded sockets")
    await asyncio.sleep(0.5 + 2 * (heartbeat or 0))  # buffers fill; heartbeats give up
    started = time.monotonic()
    cleanup = asyncio.ensure_future(runner.cleanup())
    done, _ = await asyncio.wait([cleanup], timeout=SHUTDOWN_BOUND)
    took = time.monotonic() - started
    for _, writer in silent:
        writer.close()
    assert done, f"shutdown still running after {SHUTDOWN_BOUND}s"
    assert took < SHUTDOWN_BOUND
    assert registry.stats()["sockets"] == 0


async def test_vanished_peers_of_handlers_stuck_writing_are_unregistered_too() -> None:
    """The heartbeat gives up on the peer, but the handler stays blocked in send:
    session_ws drops the connection so the handler returns and the socket goes."""
    app = flooding_app(HEARTBEAT)
    registry = app[REGISTRY_KEY]
    runner, url = await start(app)
    port = int(url.rsplit(":", 1)[1])
    try:
        silent = [await silent_client(port, "/flood") for _ in range(10)]
        await eventually(lambda: registry.stats()["sockets"] == 10, what="10 flooded sockets")
        took = await eventually(
            lambda: registry.stats()["sockets"] == 0, timeout=DEAD_PEER_BOUND, what="unregistered"
        )
        assert took <= DEAD_PEER_BOUND
        for _, writer in silent:
            writer.close()
    finally:
        await runner.cleanup()
