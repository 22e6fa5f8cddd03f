"""Per-key closes reach sockets whose handshake was in flight (the close sequence).

A handshake computes its keys (an identity lookup) before it registers; a
per-key close running in between used to find nothing and the socket lived on.
Here the key provider is held at a gate while the close runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Hashable

import aiohttp
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web
from redis.asyncio import Redis
from yarl import URL

from aiohttp_session_ws import SessionWSRegistry, session_ws, session_ws_middleware, setup
from aiohttp_session_ws.close_sequence import CloseSequence
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from tests.support.cluster import FAST, eventually, serve

ALICE = ("identity", "alice")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_mark_taken_before_a_close_is_closed_since_and_one_after_is_not() -> None:
    closes = CloseSequence(ttl=10, max_size=10)
    before = closes.current
    assert not closes.closed_since([ALICE], before)
    closes.close(ALICE)
    after = closes.current
    assert closes.closed_since([ALICE], before)
    assert closes.closed_since(["other", ALICE], before)
    assert not closes.closed_since([ALICE], after)
    assert not closes.closed_since(["other"], before)
    assert not closes.closed_since([], before)


def test_a_shared_counter_numbers_closes_and_never_goes_back() -> None:
    closes = CloseSequence(ttl=10, max_size=10)
    closes.record(ALICE, 41)
    assert closes.current == 41 and closes.last_close(ALICE) == 41
    closes.record(ALICE, 7)  # a late, older number does not undo the newer close
    assert closes.last_close(ALICE) == 41
    closes.advance(3)
    assert closes.current == 41
    assert closes.close("bob") == 42


def test_forgotten_closes_fail_closed_for_older_marks() -> None:
    clock = FakeClock()
    closes = CloseSequence(ttl=10, max_size=2, clock=clock)
    old = closes.current
    closes.close("a")
    closes.close("b")
    recent = closes.current
    closes.close("c")  # over the cap: "a" is forgotten, the floor rises to its close
    assert len(closes) == 2
    assert closes.closed_since(["never-closed"], old)  # older than a forgotten close
    assert not closes.closed_since(["never-closed"], recent)
    assert closes.closed_since(["c"], recent)
    clock.now = 10.0  # everything expired
    assert len(closes) == 0
    assert closes.closed_since(["x"], recent)
    assert not closes.closed_since(["x"], closes.current)


class Gate:
    """A key provider held at a gate: the handshake is in flight while it waits."""

    def __init__(self) -> None:
        self.computing = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self, request: web.Request) -> list[Hashable]:
        self.computing.set()
        await self.open.wait()
        return [ALICE]


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    async with session_ws(request) as ws:
        if not ws.closed:
            await ws.send_str("hello")
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
    return ws


class Node:
    def __init__(self, registry: SessionWSRegistry) -> None:
        self.registry = registry
        self.gate = Gate()
        registry.add_key_provider(self.gate)
        app = web.Application(
            middlewares=[
                aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
                session_ws_middleware,
            ]
        )
        app.router.add_get("/ws", handle_ws)
        setup(app, registry)
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        self.url = URL()

    async def start(self) -> None:
        self.url = await serve(self.runner)

    async def stop(self) -> None:
        await self.runner.cleanup()
        if isinstance(self.registry, RedisSessionWSRegistry):
            await self.registry.redis.aclose()


@pytest.fixture(params=["one node", "two redis nodes"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[Node]]:
    """[where the socket connects, where the close is called]."""
    if request.param == "one node":
        node = Node(SessionWSRegistry())
        pair = [node, node]
    else:
        channel = f"asws-{uuid.uuid4().hex[:8]}"
        url = request.getfixturevalue("redis_url")
        pair = [
            Node(RedisSessionWSRegistry(Redis.from_url(url), channel=channel, node_id=n, **FAST))
            for n in "BA"
        ]
    started = list(dict.fromkeys(pair))
    for node in started:
        await node.start()
    yield pair
    for node in started:
        await node.stop()


async def test_a_key_closed_while_the_handshake_computes_its_keys_refuses_the_socket(
    nodes: list[Node],
) -> None:
    connecting_node, closing_node = nodes
    async with aiohttp.ClientSession() as http:
        connecting = asyncio.ensure_future(http.ws_connect(connecting_node.url / "ws"))
        await asyncio.wait_for(connecting_node.gate.computing.wait(), 10)
        # Nothing is registered under the key yet: the close finds no socket.
        assert await closing_node.registry.close_all_key(ALICE) == 0
        await asyncio.sleep(0.1)  # the close reaches the other node, if any
        connecting_node.gate.open.set()
        ws = await asyncio.wait_for(connecting, 10)
        msg = await ws.receive(timeout=10)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001), msg
        registry = connecting_node.registry
        await eventually(lambda: not registry.sockets_for_key(ALICE), what="unregistered")
        assert registry.stats()["refused"] == {"key_closed": 1}

        # A handshake that began after the close is not refused.
        fresh = await http.ws_connect(connecting_node.url / "ws")
        assert (await fresh.receive(timeout=10)).data == "hello"
        assert len(registry.sockets_for_key(ALICE)) == 1
        await fresh.close()
