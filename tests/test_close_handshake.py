"""Closes every client understands: the RFC 6455 closing handshake, whatever the handler does.

The server runs in its own process (`tests/support/close_app.py`), so a client
answering a close frame a moment late is as real as it gets: the library must
wait for that answer (up to `close_timeout`) before it closes TCP, or the client
reads 1006 instead of the code. Sizes grow with ASWS_FULL=1 (200 logouts per
handler shape).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import WSMsgType
from websockets.asyncio.client import ClientConnection, connect
from yarl import URL

from aiohttp_session_ws import REGISTRY_KEY, SESSION_ENDED_CODE, SHUTDOWN_CODE
from tests.support import close_app
from tests.support.close_app import SHAPES, CloseServer, running
from tests.support.sizes import size

ENDS = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
LOGOUTS = size(40, 200)  # per handler shape and client
WORKERS = 10
STEP = 0.05  # how long each of the client's reads waits (asyncio.wait_for)


@pytest.fixture(scope="module")
def server() -> Iterator[CloseServer]:
    with running() as process:
        yield process


def ws_url(server: CloseServer, shape: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/{shape}"


@contextlib.asynccontextmanager
async def browser_like_session() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.CookieJar(unsafe=True)
    pool = aiohttp.TCPConnector(limit=0)  # every open socket holds a connection
    async with aiohttp.ClientSession(cookie_jar=jar, connector=pool) as http:
        yield http


def cookie_header(http: aiohttp.ClientSession, url: str) -> str:
    """The session cookie `http` holds for `url`, as a Cookie header for another client."""
    cookies = http.cookie_jar.filter_cookies(URL(url))
    return "; ".join(f"{m.key}={m.coded_value}" for m in cookies.values())


async def read_until_close(ws: aiohttp.ClientWebSocketResponse, limit: float = 15.0) -> Any:
    """Read as many clients do, `await asyncio.wait_for(ws.receive(), t)`, until the close."""
    deadline = time.monotonic() + limit
    while True:
        try:
            msg = await asyncio.wait_for(ws.receive(), STEP)
        except asyncio.TimeoutError:
            assert time.monotonic() < deadline, "no close frame"
            continue
        if msg.type in ENDS:
            return msg


async def aiohttp_logout(http: aiohttp.ClientSession, url: str, shape: str) -> tuple[Any, ...]:
    """Open a socket, log out from another request; return what the client saw."""
    await (await http.get(f"{url}/id")).read()
    ws = await http.ws_connect(f"{url}/ws/{shape}")
    hello = await ws.receive_json(timeout=5)
    assert hello["id"]
    await (await http.get(f"{url}/reset")).read()
    msg = await read_until_close(ws)
    return (ws.close_code, msg.type, msg.data)


async def in_workers(count: int, job: Any) -> list[Any]:
    """Run `job(http)` `count` times over WORKERS concurrent browser-like sessions."""
    results: list[Any] = []

    async def worker(share: int) -> None:
        async with browser_like_session() as http:
            for _ in range(share):
                results.append(await job(http))

    shares = [count // WORKERS + (i < count % WORKERS) for i in range(WORKERS)]
    await asyncio.gather(*(worker(share) for share in shares if share))
    return results


@pytest.mark.parametrize("shape", SHAPES)
async def test_aiohttp_clients_read_4001_after_logout(server: CloseServer, shape: str) -> None:
    results = await in_workers(LOGOUTS, lambda http: aiohttp_logout(http, server.url, shape))
    frames = [(kind, data) for _, kind, data in results]
    assert frames == [(WSMsgType.CLOSE, SESSION_ENDED_CODE)] * LOGOUTS
    codes = [code for code, _, _ in results]
    wrong = [code for code in codes if code != SESSION_ENDED_CODE]
    assert len(wrong) == 0, f"{len(wrong)} of {LOGOUTS} read close_code {sorted(set(wrong))}"


async def websockets_logout(http: aiohttp.ClientSession, url: str, shape: str) -> tuple[Any, ...]:
    """The same logout, the socket opened by the `websockets` package's client."""
    await (await http.get(f"{url}/id")).read()
    cookie = cookie_header(http, url)
    ws_address = url.replace("http://", "ws://") + f"/ws/{shape}"
    async with connect(ws_address, additional_headers={"Cookie": cookie}) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # the hello
        await (await http.get(f"{url}/reset")).read()
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        return clean_close(ws)


def clean_close(ws: ClientConnection) -> tuple[Any, ...]:
    """(code received, reason, close frames exchanged with the server's first)."""
    protocol = ws.protocol
    rcvd, sent = protocol.close_rcvd, protocol.close_sent
    exchanged = rcvd is not None and sent is not None and protocol.close_rcvd_then_sent is True
    return (rcvd.code if rcvd else None, rcvd.reason if rcvd else None, exchanged)


@pytest.mark.parametrize("shape", SHAPES)
async def test_websockets_clients_see_a_clean_4001(server: CloseServer, shape: str) -> None:
    count = max(LOGOUTS // 4, 10)
    results = await in_workers(count, lambda http: websockets_logout(http, server.url, shape))
    assert results == [(SESSION_ENDED_CODE, "session ended", True)] * count


async def test_a_peer_that_never_answers_is_dropped_after_close_timeout() -> None:
    """A client that reads the close frame but never answers it is dropped in time."""
    with running("--close-timeout", "0.5") as process:
        async with browser_like_session() as http:
            await (await http.get(f"{process.url}/id")).read()
            cookie = cookie_header(http, process.url)
            reader, writer = await raw_upgrade(process.port, "/ws/async-for", cookie)
            started = time.monotonic()
            await (await http.get(f"{process.url}/reset")).read()
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := await asyncio.wait_for(reader.read(1024), 10):
                    data += chunk
            elapsed = time.monotonic() - started
            writer.close()
            stats = await (await http.get(f"{process.url}/stats")).json()
    assert b"\x88" in data and SESSION_ENDED_CODE.to_bytes(2, "big") in data
    assert elapsed < 5, elapsed  # close_timeout is 0.5 s; aiohttp's own wait would be 10 s
    assert stats["closed"]["session_ended"] == 1
    assert stats["sockets"] == 0


async def raw_upgrade(
    port: int, path: str, cookie: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client that completes the handshake and then never writes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    return reader, writer


async def busy_event_loop() -> None:
    """Keep this client's event loop busy half the time, as a loaded client's is:
    a close frame then often waits a few milliseconds before it is answered."""
    while True:
        time.sleep(0.004)  # noqa: ASYNC251 - blocking on purpose
        await asyncio.sleep(0.004)


async def test_shutdown_gives_every_client_a_clean_1001() -> None:
    per_shape = max(LOGOUTS // 4, 5)
    with running() as process:
        async with browser_like_session() as http:
            await (await http.get(f"{process.url}/id")).read()
            cookie = cookie_header(http, process.url)
            aiohttp_sockets = []
            ws_sockets = []
            for shape in SHAPES:
                for _ in range(per_shape):
                    ws = await http.ws_connect(f"{process.url}/ws/{shape}")
                    await ws.receive_json(timeout=5)
                    aiohttp_sockets.append(ws)
                    peer = await connect(
                        ws_url(process, shape), additional_headers={"Cookie": cookie}
                    )
                    await asyncio.wait_for(peer.recv(), 5)
                    ws_sockets.append(peer)

            async def websockets_close(peer: ClientConnection) -> tuple[Any, ...]:
                with contextlib.suppress(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(peer.recv(), 15)
                await peer.wait_closed()
                return clean_close(peer)

            readers = [asyncio.ensure_future(read_until_close(ws)) for ws in aiohttp_sockets]
            peers = [asyncio.ensure_future(websockets_close(peer)) for peer in ws_sockets]
            busy = asyncio.ensure_future(busy_event_loop())
            await asyncio.to_thread(process.stop)  # SIGTERM: a clean shutdown
            msgs = await asyncio.gather(*readers)
            seen = await asyncio.gather(*peers)
            busy.cancel()
    total = per_shape * len(SHAPES)
    assert [(m.type, m.data) for m in msgs] == [(WSMsgType.CLOSE, SHUTDOWN_CODE)] * total
    codes = [ws.close_code for ws in aiohttp_sockets]
    assert codes == [SHUTDOWN_CODE] * total, sorted(set(codes))
    assert seen == [(SHUTDOWN_CODE, "server shutdown", True)] * total


async def test_a_push_only_handler_answers_pings_and_closes(aiohttp_client: Any) -> None:
    app = close_app.make_app()
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws/push", autoping=False)
    await ws.receive_json(timeout=5)
    await ws.ping(b"are you there")
    msg = await ws.receive(timeout=5)
    while msg.type is WSMsgType.TEXT:  # the handler's ticks
        msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.PONG, b"are you there")
    registry = app[REGISTRY_KEY]
    assert await asyncio.wait_for(ws.close(), registry.close_timeout) is True
    assert ws.close_code == 1000
    for _ in range(100):  # the handler's next send fails and it unregisters
        if not registry.stats()["sockets"]:
            break
        await asyncio.sleep(0.02)
    assert registry.stats()["sockets"] == 0
