"""Redis going away and coming back, and garbage on the channel, with three live nodes."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aiohttp_session_ws import SESSION_ENDED_CODE
from aiohttp_session_ws.redis import ClusterPublishError
from tests.support.cluster import (
    Browser,
    Node,
    closes,
    eventually,
    expect_close,
    expect_open,
    sockets,
    start_cluster,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def channel() -> str:
    return f"asws-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def cluster(redis_url: str, channel: str) -> AsyncIterator[list[Node]]:
    nodes = await start_cluster(redis_url, channel)
    yield nodes
    for node in nodes:
        await node.stop()


async def cluster_answers(node: Node, expected: int, timeout: float) -> float:
    """Probe with closes of an unused id until `expected` nodes answer; return the time."""
    start = time.monotonic()
    while True:
        try:
            probe = await node.registry.close_all_session(f"probe-{uuid.uuid4().hex}", wait=0.5)
            if probe.nodes_expected == probe.nodes_answered == expected:
                return time.monotonic() - start
        except ClusterPublishError:
            pass
        assert time.monotonic() - start < timeout, f"cluster did not answer within {timeout}s"


async def test_redis_killed_and_restarted(
    cluster: list[Node], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiohttp_session_ws")
    a, b, c = cluster
    x, y, z = Browser(), Browser(), Browser()
    try:
        x_id = (await x.get_json(a, "/id"))["id"]
        await y.get_json(b, "/id")
        x_on_a, x_on_b = await x.ws(a), await x.ws(b)
        y_on_b = await y.ws(b)
        await eventually(lambda: sockets(cluster) == 3, what="3 sockets registered")

        redis_server.kill()

        # Local closes keep working and the failure to reach the others is not silent.
        closing = closes([x_on_a], SESSION_ENDED_CODE)
        with pytest.raises(ClusterPublishError) as failed:
            await a.registry.close_all_session(x_id)
        assert failed.value.local_closed == 1
        await closing
        await expect_open(x_on_b)  # B could not be told
        assert a.registry.stats()["publish_failures"] == 1
        assert a.registry.stats()["redis_up"] is False
        # Nodes keep serving: requests, new sockets, scheduled closes on the same node.
        assert await y.get(b, "/reset") == "reset"
        await expect_close(y_on_b, SESSION_ENDED_CODE)
        await eventually(lambda: b.registry.stats()["publish_failures"] == 1, what="B's failure")
        await z.get_json(c, "/id")
        z_on_c = await z.ws(c)
        await expect_open(z_on_c)
        # The id A revoked is refused on A itself (its own memory) during the outage.
        late = Browser(cookie=x.cookie(a))
        try:
            await expect_close(await late.ws(a), SESSION_ENDED_CODE)
        finally:
            await late.close()

        redis_server.start()  # same port
        restarted = time.monotonic()
        # A's close, queued during the outage, reaches B once Redis answers.
        await expect_close(x_on_b, SESSION_ENDED_CODE, timeout=10)
        await cluster_answers(a, 3, timeout=10)
        z_id = (await z.get_json(c, "/id"))["id"]
        z_on_b = await z.ws(b)
        await eventually(lambda: sockets([b]) == 1, what="z's socket on B")
        closing = closes([z_on_c, z_on_b], SESSION_ENDED_CODE)
        result = await a.registry.close_all_session(z_id, wait=2.0)
        recovered = time.monotonic() - restarted
        assert (result.closed, result.nodes_answered) == (2, 3), result
        await closing
        assert recovered < 10
    finally:
        for browser in (x, y, z):
            await browser.close()

    # Each node logged the outage once and the recovery once, not per message.
    for node in cluster:
        mine = [r.getMessage() for r in caplog.records if f"node {node.name}:" in r.getMessage()]
        assert sum("unreachable" in m for m in mine) == 1, mine
        assert sum("reachable again" in m for m in mine) == 1, mine
        assert node.registry.stats()["redis_up"] is True


async def test_redis_paused_then_resumed(cluster: list[Node], redis_server: RedisServer) -> None:
    a, b, _ = cluster
    x = Browser()
    try:
        x_id = (await x.get_json(a, "/id"))["id"]
        on_a, on_b = await x.ws(a), await x.ws(b)
        await eventually(lambda: sockets(cluster) == 2, what="2 sockets registered")
        redis_server.pause()
        try:
            started = time.monotonic()
            closing = closes([on_a], SESSION_ENDED_CODE)
            with pytest.raises(ClusterPublishError) as failed:
                await a.registry.close_all_session(x_id, wait=1.0)
            assert time.monotonic() - started < 3  # bounded by redis_timeout, not hung
            assert failed.value.local_closed == 1
            await closing
            await expect_open(on_b)
        finally:
            redis_server.resume()
        # The close A could not publish during the stall reaches B once Redis answers.
        await expect_close(on_b, SESSION_ENDED_CODE, timeout=10)
        await cluster_answers(a, 3, timeout=10)
        result = await a.registry.close_all_session(x_id, wait=2.0)
        assert (result.closed, result.nodes_answered) == (0, 3)
    finally:
        await x.close()


GARBAGE: list[bytes] = [
    b"not json",
    b"\xff\xfe\x00",
    b"{}",
    b"[1, 2, 3]",
    json.dumps({"hello": "from another app"}).encode(),
    json.dumps({"kind": "aiohttp_session_ws", "v": 99, "type": "close"}).encode(),
    json.dumps(
        {
            "kind": "aiohttp_session_ws",
            "v": 1,
            "type": "close",
            "scope": "session",
            "target": 1.5,
            "origin": "Q",
        }
    ).encode(),
    json.dumps(
        {
            "kind": "aiohttp_session_ws",
            "v": 1,
            "type": "close",
            "scope": "everything",
            "target": "x",
            "origin": "Q",
        }
    ).encode(),
    json.dumps({"kind": "aiohttp_session_ws", "v": 1, "type": "close", "scope": "key"}).encode(),
    json.dumps({"kind": "aiohttp_session_ws", "v": 1, "type": "ack", "req": "r"}).encode(),
    b"[" * 100_000,
    b"[" * 5_000 + b"]" * 5_000,
]


async def test_garbage_on_the_channel_is_ignored(
    cluster: list[Node], redis_url: str, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiohttp_session_ws")
    a, b, c = cluster
    raw = Redis.from_url(redis_url)
    x = Browser()
    try:
        for payload in GARBAGE:
            assert await raw.publish(channel, payload) == 3
        await raw.publish(f"{channel}:ack:A", json.dumps({"kind": "aiohttp_session_ws"}))
        await eventually(
            lambda: (
                a.registry.stats()["ignored_messages"] == len(GARBAGE) + 1
                and all(n.registry.stats()["ignored_messages"] == len(GARBAGE) for n in (b, c))
            ),
            what="every node to ignore every message",
        )
        # The listeners survived: a real close still reaches every node.
        x_id = (await x.get_json(a, "/id"))["id"]
        sockets_ = [await x.ws(node) for node in cluster]
        await eventually(lambda: sockets(cluster) == 3, what="3 sockets registered")
        closing = closes(sockets_, SESSION_ENDED_CODE)
        result = await c.registry.close_all_session(x_id, wait=2.0)
        assert (result.closed, result.nodes_answered) == (3, 3)
        await closing
    finally:
        await x.close()
        await raw.aclose()
    # Logged, but rate-limited: one warning per node for the whole burst.
    for node in cluster:
        mine = [r for r in caplog.records if f"node {node.name}: ignored" in r.getMessage()]
        assert len(mine) == 1
