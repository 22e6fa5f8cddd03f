"""`SessionWebSocketResponse` behaves as aiohttp's `WebSocketResponse` for the handler.

Each handler runs twice, on a plain `web.WebSocketResponse` and under
`session_ws`, over a real server and socket; both must report the same.
Runs on the minimum supported aiohttp (`make test-min-aiohttp`) and the latest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web

from aiohttp_session_ws import (
    REGISTRY_KEY,
    SESSION_ENDED_CODE,
    SessionWSRegistry,
    get_session_ws_id,
    session_ws,
    session_ws_middleware,
    setup,
)
from aiohttp_session_ws.websocket import (
    _DIRECT_READS,
    READ_AHEAD_BYTES,
    READER_TASK_NAME,
    SessionWebSocketResponse,
)

Body = Callable[[web.WebSocketResponse, list[Any]], Awaitable[None]]
KINDS = ["plain", "session_ws"]


def describe(msg: Any) -> list[Any]:
    """A message as comparable data (a CLOSE's code as an int, and its reason)."""
    if msg.type is WSMsgType.CLOSE:
        return [msg.type.name, int(msg.data), msg.extra]
    return [msg.type.name, msg.data]


def make_app(
    kind: str,
    body: Body,
    seen: list[Any],
    registry: SessionWSRegistry | None = None,
    **ws_options: Any,
) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        if kind == "plain":
            ws = web.WebSocketResponse(**ws_options)
            await ws.prepare(request)
            await body(ws, seen)
            return ws
        async with session_ws(request, **ws_options) as ws:
            assert isinstance(ws, SessionWebSocketResponse)
            await body(ws, seen)
        return ws

    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app.router.add_get("/ws", handler)
    setup(app, registry if registry is not None else SessionWSRegistry())
    return app


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def run(
    kind: str, body: Body, client: Callable[[Any], Awaitable[Any]], **options: Any
) -> Any:
    """Serve `body` as `kind`, run `client(ws)`; return what both sides saw."""
    seen: list[Any] = []
    async with served(make_app(kind, body, seen, **options)) as url:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{url}/ws")
            client_saw = await asyncio.wait_for(client(ws), 10)
            await ws.close()
        await handler_done(seen)
    return seen, client_saw


async def handler_done(seen: list[Any]) -> None:
    """Wait (at most 2 s) for the handler's last steps: `seen` ending with "done"."""
    for _ in range(200):
        if seen and seen[-1] == "done":
            return
        await asyncio.sleep(0.01)


async def receive_api(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    try:
        await ws.receive(timeout=0.05)
    except asyncio.TimeoutError:
        seen.append("timeout")
    await ws.send_str("go")
    seen.append(await ws.receive_str())
    seen.append(await ws.receive_json())
    seen.append(await ws.receive_bytes())
    first = asyncio.ensure_future(ws.receive())
    await asyncio.sleep(0)
    try:
        await ws.receive()
    except RuntimeError as exc:
        seen.append(str(exc))
    await ws.send_str("next")
    seen.append(describe(await first))
    try:
        await ws.receive_str()
    except TypeError:  # aiohttp >= 3.11 raises WSMessageTypeError, a TypeError
        seen.append("not text")
    seen.append(describe(await ws.receive()))  # the client's close
    seen.append(ws.close_code)
    seen.append(describe(await ws.receive()))
    seen.append("done")


async def receive_api_client(ws: aiohttp.ClientWebSocketResponse) -> Any:
    assert await ws.receive_str() == "go"
    await ws.send_str("hello")
    await ws.send_json({"a": 1})
    await ws.send_bytes(b"raw")
    assert await ws.receive_str() == "next"
    await ws.send_str("x")
    await ws.send_bytes(b"not text")
    await ws.close(code=4000, message=b"bye")
    return ws.close_code


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_api(kind: str) -> None:
    seen, client_saw = await run(kind, receive_api, receive_api_client)
    assert seen == [
        "timeout",
        "hello",
        {"a": 1},
        b"raw",
        "Concurrent call to receive() is not allowed",
        ["TEXT", "x"],
        "not text",
        ["CLOSE", 4000, "bye"],
        4000,
        ["CLOSED", None],
        "done",
    ]
    assert client_saw == 1000  # the close code of the server's answer


async def closed_by_another_task(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    async def close_soon() -> None:
        await asyncio.sleep(0.05)
        seen.append(await ws.close(code=4001, message=b"session ended"))

    closer = asyncio.ensure_future(close_soon())
    seen.append(describe(await ws.receive()))
    await closer
    seen.append(await ws.close())  # already closed
    seen.append(describe(await ws.receive()))
    seen.append(ws.close_code)
    seen.append("done")


async def read_close(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await ws.receive()
    return [describe(msg), ws.close_code]


@pytest.mark.parametrize("kind", KINDS)
async def test_close_from_another_task_while_the_handler_reads(kind: str) -> None:
    seen, client_saw = await run(kind, closed_by_another_task, read_close)
    # aiohttp wakes the handler before its close ends, session_ws after the handshake
    assert sorted(seen[:2], key=str) == [True, ["CLOSING", None]]
    assert seen[2:4] == [False, ["CLOSED", None]]
    if kind == "session_ws":  # the handshake completed: the server read the answer
        assert seen[4] == 1000
        assert client_saw == [["CLOSE", 4001, "session ended"], 4001]
    else:  # aiohttp closed TCP without waiting for the client's answer
        assert client_saw[0] == ["CLOSE", 4001, "session ended"]


async def closes_itself(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    async for msg in ws:
        if msg.data == "bye":
            seen.append(await ws.close(code=4002, message=b"as asked"))
    seen.append(ws.close_code)
    seen.append("done")


async def say_bye(ws: aiohttp.ClientWebSocketResponse) -> Any:
    await ws.send_str("bye")
    return await read_close(ws)


@pytest.mark.parametrize("kind", KINDS)
async def test_the_handler_closing_itself(kind: str) -> None:
    seen, client_saw = await run(kind, closes_itself, say_bye)
    assert seen == [True, 1000, "done"]  # the code of the client's answer
    assert client_saw == [["CLOSE", 4002, "as asked"], 4002]


async def no_autoclose(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    seen.append(describe(await ws.receive()))
    seen.append(describe(await ws.receive()))
    await ws.send_str("still here")  # the client's Close is not answered yet
    seen.append(await ws.close(code=1000))
    seen.append("done")


async def close_and_listen(ws: aiohttp.ClientWebSocketResponse) -> Any:
    await ws.send_frame(b"\x0f\xa0", WSMsgType.CLOSE)  # 4000, without waiting
    msg = await ws.receive()
    return describe(msg)


@pytest.mark.parametrize("kind", KINDS)
async def test_autoclose_false(kind: str) -> None:
    if not hasattr(aiohttp.ClientWebSocketResponse, "send_frame"):
        pytest.skip("this aiohttp's client cannot send a bare close frame")
    seen, client_saw = await run(kind, no_autoclose, close_and_listen, autoclose=False)
    assert seen == [["CLOSE", 4000, ""], ["CLOSING", None], True, "done"]
    assert client_saw == ["TEXT", "still here"]


async def reads_late(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    await asyncio.sleep(0.5)  # the client sends far more than the reader reads ahead
    async for msg in ws:
        seen.append(len(msg.data))
        if len(seen) == COUNT:
            await ws.send_str("got all")
    seen.append("done")


COUNT = 4 * READ_AHEAD_BYTES // 4096


async def flood(ws: aiohttp.ClientWebSocketResponse) -> Any:
    for i in range(COUNT):
        await ws.send_bytes(i.to_bytes(4, "big") * 1024)
    return await ws.receive_str()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_backlog_beyond_the_read_ahead_loses_nothing(kind: str) -> None:
    seen, client_saw = await run(kind, reads_late, flood)
    assert client_saw == "got all"
    assert seen == [4096] * COUNT + ["done"]


async def test_a_socket_registered_by_hand_closes_as_before() -> None:
    """1.1.1-style code: a plain WebSocketResponse registered by hand still closes."""
    registry = SessionWSRegistry()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session_ws_id = await get_session_ws_id(request)
        registry.register(session_ws_id, ws)
        try:
            async for _ in ws:
                pass
        finally:
            registry.unregister(session_ws_id, ws)
        return ws

    app = make_app("plain", closes_itself, [])
    app.router.add_get("/by-hand", handler)
    app[REGISTRY_KEY] = registry
    async with served(app) as url, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/by-hand")
        await asyncio.sleep(0.05)
        (session_ws_id,) = list(registry)
        reading = asyncio.ensure_future(ws.receive(timeout=5))
        assert await registry.close_all_session(session_ws_id) == 1
        msg = await reading
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("closed_by", ["client", "server"])
async def test_a_closed_socket_and_its_request_are_freed_without_the_cyclic_gc(
    kind: str, closed_by: str
) -> None:
    """Once a socket is closed and its handler has returned, reference counting frees
    the socket and its request. A reference cycle between them would leave every
    connection's objects (request, socket, protocol, queues: ~45 per connect) to the
    cyclic garbage collector, whose passes then cost every connect dearly."""
    refs: list[weakref.ref[Any]] = []
    opened: list[web.WebSocketResponse] = []  # emptied by the test before it checks
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        refs.append(weakref.ref(request))
        if kind == "plain":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            opened.append(ws)
            async for _ in ws:
                pass
        else:
            async with session_ws(request) as ws:
                opened.append(ws)
                async for _ in ws:
                    pass
        refs.append(weakref.ref(ws))
        done.set()
        return ws

    app = make_app(kind, closes_itself, [])
    app.router.add_get("/freed", handler)
    gc.collect()
    gc.disable()
    try:
        async with served(app) as url, aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{url}/freed")
            await ws.send_str("opened")
            for _ in range(100):
                if opened:
                    break
                await asyncio.sleep(0.01)
            server_ws = opened.pop()
            if closed_by == "client":
                await ws.close()
            elif kind == "plain":
                await server_ws.close()
            else:  # the library's close path: a logout
                (session_ws_id,) = list(app[REGISTRY_KEY])
                assert await app[REGISTRY_KEY].close_all_session(session_ws_id) == 1
            del server_ws
            if closed_by == "server":
                msg = await ws.receive(timeout=5)
                assert msg.type is WSMsgType.CLOSE
            await asyncio.wait_for(done.wait(), 5)
            for _ in range(100):  # the connection's last steps
                if all(ref() is None for ref in refs):
                    break
                await asyncio.sleep(0.01)
            assert [ref() is None for ref in refs] == [True, True]
    finally:
        gc.enable()


# -- a handler reading straight from aiohttp, interrupted by a close -------------
#
# Until a handler stops reading, `session_ws`'s socket has no reader task: the
# handler's receive() reads from aiohttp itself, and a close from another task
# interrupts that read. What the handler sees must not change.

WAITS = ["receive", "receive-timeout", "wait_for", "asyncio.timeout"]


async def wait_in(how: str, ws: web.WebSocketResponse) -> Any:
    if how == "receive":
        return await ws.receive()
    if how == "receive-timeout":
        return await ws.receive(timeout=30)
    if how == "wait_for":
        return await asyncio.wait_for(ws.receive(), 30)
    async with asyncio.timeout(30):  # type: ignore[attr-defined]  # Python >= 3.11
        return await ws.receive()


@pytest.mark.parametrize("how", WAITS)
async def test_a_close_interrupting_a_read_under_a_timeout_leaves_it_alone(how: str) -> None:
    if how == "asyncio.timeout" and not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout needs Python 3.11")

    async def body(ws: web.WebSocketResponse, seen: list[Any]) -> None:
        async def close_soon() -> None:
            await asyncio.sleep(0.05)
            seen.append(await ws.close(code=4001, message=b"session ended"))

        closer = asyncio.ensure_future(close_soon())
        seen.append(describe(await wait_in(how, ws)))
        await closer
        task = asyncio.current_task()
        seen.append(task.cancelling() if hasattr(task, "cancelling") else 0)  # type: ignore[union-attr]
        seen.append("done")

    seen, client_saw = await run("session_ws", body, read_close)
    # The handler gets CLOSING once the handshake is done; no timeout, no
    # cancellation leaks out, and none is left counted on its task.
    assert seen == [True, ["CLOSING", None], 0, "done"]
    assert client_saw == [["CLOSE", 4001, "session ended"], 4001]


@pytest.mark.skipif(not hasattr(asyncio.Task, "uncancel"), reason="needs Python >= 3.11")
async def test_a_handler_cancelled_while_a_close_interrupts_its_read_stays_cancelled() -> None:
    async def body(ws: web.WebSocketResponse, seen: list[Any]) -> None:
        handler = asyncio.current_task()
        assert handler is not None

        async def close_and_cancel() -> None:
            await asyncio.sleep(0.05)
            closing = asyncio.ensure_future(ws.close(code=4001))
            await asyncio.sleep(0)  # the close has interrupted the read, which has not ended
            handler.cancel()  # someone else's cancellation, at the same moment
            seen.append(await closing)

        closer = asyncio.ensure_future(close_and_cancel())
        try:
            await ws.receive()
            seen.append("not cancelled")
        except asyncio.CancelledError:
            seen.append("cancelled")
            await closer
            seen.append("done")
            raise

    seen, client_saw = await run("session_ws", body, read_close)
    assert seen == ["cancelled", True, "done"]
    assert client_saw == [["CLOSE", 4001, ""], 4001]


@pytest.mark.parametrize("how", ["wait_for", "asyncio.timeout", "task.cancel"])
async def test_a_timeout_or_cancel_of_a_read_is_not_taken_for_a_close(how: str) -> None:
    if how == "asyncio.timeout" and not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout needs Python 3.11")

    async def body(ws: web.WebSocketResponse, seen: list[Any]) -> None:
        try:
            if how == "wait_for":
                await asyncio.wait_for(ws.receive(), 0.1)
            elif how == "asyncio.timeout":
                async with asyncio.timeout(0.1):  # type: ignore[attr-defined]
                    await ws.receive()
            else:
                reading = asyncio.ensure_future(ws.receive())
                await asyncio.sleep(0.1)
                reading.cancel()
                await reading
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            seen.append(type(exc).__name__)
        seen.append(describe(await ws.receive()))  # reading again works
        seen.append("done")

    async def send_after_a_while(ws: aiohttp.ClientWebSocketResponse) -> Any:
        await asyncio.sleep(0.3)
        await ws.send_str("later")

    seen, _ = await run("session_ws", body, send_after_a_while)
    error = "CancelledError" if how == "task.cancel" else "TimeoutError"
    assert seen == [error, ["TEXT", "later"], "done"]


async def reads_once_then_sleeps(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    seen.append(describe(await ws.receive()))
    while not ws.closed:  # busy elsewhere: it does not read again
        await asyncio.sleep(0.05)
    seen.append("done")


async def test_a_handler_that_stops_reading_still_answers_pings_and_closes() -> None:
    seen: list[Any] = []
    app = make_app("session_ws", reads_once_then_sleeps, seen)
    async with served(app) as url, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/ws", autoping=False)
        await ws.send_str("one")
        await ws.ping(b"still there?")
        msg = await ws.receive(timeout=5)
        assert describe(msg) == ["PONG", b"still there?"]
        assert await asyncio.wait_for(ws.close(), 5) is True
        assert ws.close_code == 1000
    assert seen[0] == ["TEXT", "one"]


async def test_a_reading_handler_whose_sender_is_stuck_ends_with_the_heartbeat() -> None:
    """A handler reading with `async for` while its own task sends to a peer that
    stopped reading: aiohttp gives up on the peer (no pong) and ends the read, and
    the connection is dropped half a heartbeat later, so the blocked send raises,
    the handler returns and its socket is unregistered (the red team's probe: it
    stayed registered for good when a direct read had ended the reading)."""
    seen: list[Any] = []

    async def body(ws: web.WebSocketResponse, seen: list[Any]) -> None:
        async def pump() -> None:
            with contextlib.suppress(Exception):
                while True:
                    await ws.send_bytes(b"x" * 65536)

        sender = asyncio.ensure_future(pump())
        async for _ in ws:
            pass
        await sender
        seen.append("done")

    app = make_app("session_ws", body, seen, heartbeat=0.5)
    loop = asyncio.get_running_loop()
    async with served(app) as url:
        port = int(url.rsplit(":", 1)[1])
        peer = socket.socket()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.setblocking(False)
        try:
            await loop.sock_connect(peer, ("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            await loop.sock_sendall(
                peer,
                (
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode(),
            )
            await loop.sock_recv(peer, 200)  # part of the 101, then never read again
            for _ in range(100):  # heartbeat 0.5 s: missed pong, then half a heartbeat
                if seen == ["done"]:
                    break
                await asyncio.sleep(0.05)
            assert seen == ["done"]
            assert app[REGISTRY_KEY].stats()["sockets"] == 0
        finally:
            peer.close()


# -- a handshake that awaits a remote answer after the upgrade -------------------
#
# A cluster registry asks Redis whether the id is revoked after the upgrade; the
# handler gets its socket only then. Reading is still the handler's: the library
# looks for a handler that does not read only once the handler has the socket.


class RemoteRevocations(SessionWSRegistry):
    """Answers `refuses` after a round trip, as a cluster registry asks Redis."""

    async def refuses(self, session_ws_id: Any, keys: Any = (), mark: Any = None) -> str | None:
        await asyncio.sleep(0.05)
        return await super().refuses(session_ws_id, keys, mark)


def reader_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == READER_TASK_NAME]


async def log_out(registry: SessionWSRegistry, ws: aiohttp.ClientWebSocketResponse) -> None:
    """End the session of the registry's one socket; the client reads a clean 4001."""
    (session_ws_id,) = list(registry)
    assert await registry.close_all_session(session_ws_id) == 1
    msg = await ws.receive(timeout=5)
    assert describe(msg) == ["CLOSE", SESSION_ENDED_CODE, "session ended"]
    assert ws.close_code == SESSION_ENDED_CODE


async def echoes(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
    seen.append("done")


async def ticks(ws: web.WebSocketResponse, seen: list[Any]) -> None:
    while not ws.closed:
        await ws.send_str("tick")
        await asyncio.sleep(0.05)
    seen.append("done")


@pytest.mark.skipif(not _DIRECT_READS, reason="Python 3.10: the reader task reads for every socket")
async def test_a_reading_handler_reads_itself_after_a_remote_revocation_check() -> None:
    seen: list[Any] = []
    registry = RemoteRevocations()
    app = make_app("session_ws", echoes, seen, registry)
    async with served(app) as url, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/ws")
        await ws.send_str("hi")
        assert describe(await ws.receive(timeout=5)) == ["TEXT", "hi"]
        await asyncio.sleep(0.05)
        assert reader_tasks() == []  # no task reads for the handler
        await log_out(registry, ws)
        await handler_done(seen)
    assert seen == ["done"]


async def test_a_push_only_handler_answers_pings_and_closes_after_a_remote_check() -> None:
    seen: list[Any] = []
    app = make_app("session_ws", ticks, seen, RemoteRevocations())
    async with served(app) as url, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/ws", autoping=False)
        await ws.ping(b"still there?")
        msg = await ws.receive(timeout=5)
        while msg.type is WSMsgType.TEXT:  # the handler's ticks
            msg = await ws.receive(timeout=5)
        assert describe(msg) == ["PONG", b"still there?"]
        assert await asyncio.wait_for(ws.close(), 5) is True
        assert ws.close_code == 1000
        await handler_done(seen)
    assert seen == ["done"]


async def test_a_logout_during_the_remote_check_closes_cleanly() -> None:
    seen: list[Any] = []
    registry = RemoteRevocations()
    app = make_app("session_ws", echoes, seen, registry)
    async with served(app) as url, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/ws")  # the 101 is out; the check is in flight
        await log_out(registry, ws)  # the socket is registered before the check
        await handler_done(seen)
    assert seen == ["done"]
    assert len(registry) == 0
    assert registry.stats()["refused"]["revoked"] == 1  # the check then found it revoked
