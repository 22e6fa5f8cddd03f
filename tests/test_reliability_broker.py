"""Broker faults under a stream of resets: Redis killed, hung for 5 s, restarted.

Three nodes share one real redis-server. A stream of resets runs throughout;
each reset is bounded in time (nothing deadlocks), always closes the sockets
on the node that served it (local closes never stop working), and once the
listeners have recovered every reset reaches every node.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

from aiohttp_session_ws import SESSION_ENDED_CODE
from aiohttp_session_ws.redis import registry as redis_registry
from tests.support.cluster import (
    Browser,
    Node,
    eventually,
    expect_close,
    expect_open,
    start_cluster,
)
from tests.support.redis_server import RedisServer
from tests.support.security_nodes import redis_nodes
from tests.support.sizes import size

pytestmark = [pytest.mark.redis, pytest.mark.heavy]

AFTER_RECOVERY = size(6, 30)
"""Resets checked on every node after each recovery."""
ROUND_BOUND = 10.0
"""Seconds one reset round (open 3 sockets, reset, see the closes) may take: a hang fails."""
STOP_BOUND = 10.0
"""Seconds a node's cleanup may take (FAST: redis_timeout 0.5 s, close_timeout 1 s)."""


@pytest.fixture
async def cluster(redis_url: str) -> AsyncIterator[list[Node]]:
    nodes = await start_cluster(redis_url, f"asws-faults-{uuid.uuid4().hex[:8]}")
    yield nodes
    for node in nodes:
        await node.stop()


async def reset_round(nodes: list[Node], via: Node, everywhere: bool) -> None:
    """One browser with a socket on every node resets its session on `via`.

    With `everywhere`, the other nodes close theirs too, and a late reconnect
    with the pre-reset cookie is refused on another node (the revocation is shared).
    """
    browser = Browser()
    try:
        await browser.get_json(via, "/id")
        sockets = {node.name: await browser.ws(node) for node in nodes}
        for ws in sockets.values():
            await expect_open(ws)  # echoed: the handler runs, so the socket is registered
        old_cookie = browser.cookie(via)
        assert await browser.get(via, "/reset") == "reset"
        await expect_close(sockets.pop(via.name), SESSION_ENDED_CODE)
        for ws in sockets.values():
            if everywhere:
                await expect_close(ws, SESSION_ENDED_CODE)
            else:
                await ws.close()
        if everywhere:
            late = Browser(cookie=old_cookie)
            try:
                other = nodes[(nodes.index(via) + 1) % len(nodes)]
                await expect_close(await late.ws(other), SESSION_ENDED_CODE)
            finally:
                await late.close()
    finally:
        await browser.close()


class Stream:
    """Resets in a loop, round-robin over the nodes, until stopped; counts rounds."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.rounds = 0
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            via = self.nodes[self.rounds % len(self.nodes)]
            await asyncio.wait_for(reset_round(self.nodes, via, everywhere=False), ROUND_BOUND)
            self.rounds += 1

    async def progress(self, rounds: int = 2, timeout: float = 30.0) -> None:
        """Wait until `rounds` more rounds have completed (the stream is not stuck)."""
        target = self.rounds + rounds
        await eventually(lambda: self.rounds >= target or self._task.done(), timeout=timeout)
        if self._task.done():
            self._task.result()  # raises what stopped it

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, ROUND_BOUND * 2)


def resubscribes(nodes: list[Node]) -> list[int]:
    return [n.registry.stats()["resubscribes"] for n in nodes]


async def recovered(nodes: list[Node], before: list[int] | None = None) -> None:
    """Every node sees Redis up and is subscribed (again, if `before` is given: each
    node's re-subscription count must have grown past it)."""

    def ok() -> bool:
        stats = [n.registry.stats() for n in nodes]
        again = before is None or all(
            s["resubscribes"] > b for s, b in zip(stats, before, strict=True)
        )
        return again and all(s["subscribed"] and s["redis_up"] for s in stats)

    await eventually(ok, timeout=15, what="every listener to recover")


async def reaches_every_node(nodes: list[Node]) -> None:
    for i in range(AFTER_RECOVERY):
        await asyncio.wait_for(reset_round(nodes, nodes[i % 3], everywhere=True), ROUND_BOUND)


async def test_resets_through_kill_pause_and_restart(
    cluster: list[Node], redis_server: RedisServer
) -> None:
    stream = Stream(cluster)
    try:
        await stream.progress()
        await reaches_every_node(cluster)

        before = resubscribes(cluster)
        redis_server.kill()  # SIGKILL mid-stream
        await stream.progress(3)
        redis_server.start()
        await recovered(cluster, before)
        await stream.progress()
        await reaches_every_node(cluster)

        redis_server.pause()  # SIGSTOP: hung, not dead
        paused = time.monotonic()
        try:
            await stream.progress(2, timeout=20)
            await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - paused)))
        finally:
            redis_server.resume()
        await recovered(cluster)
        await stream.progress()
        await reaches_every_node(cluster)

        before = resubscribes(cluster)
        redis_server.restart()  # a clean restart: the connections all break at once
        await recovered(cluster, before)
        await stream.progress()
        await reaches_every_node(cluster)
    finally:
        await stream.stop()
    assert sum(n.registry.stats()["sockets"] for n in cluster) == 0


async def test_shutdown_right_after_a_redis_restart_is_bounded(
    redis_url: str, redis_server: RedisServer
) -> None:
    """redis-py can lose the listener's cancellation while it reconnects; stop() must
    not wait for it forever (it did: the app's cleanup hung)."""
    nodes = redis_nodes(redis_url, "AB")
    for node in nodes:
        await node.start()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        ws = await http.ws_connect(nodes[0].url / "ws")
        await ws.receive(timeout=10)
        redis_server.kill()
        redis_server.start()
    stops = [asyncio.ensure_future(node.stop()) for node in nodes]
    _, hung = await asyncio.wait(stops, timeout=STOP_BOUND)
    assert not hung, f"{len(hung)} node(s) did not stop within {STOP_BOUND}s"


async def test_a_session_close_missed_while_unsubscribed_is_applied_on_resubscribe(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pub/sub drops what a node misses while its subscription is down; the revocation
    written to Redis before the publish does not, and the node reconciles from it
    (in batches: one id per round trip here), closing only the revoked session."""
    monkeypatch.setattr(redis_registry, "RECONCILE_BATCH", 1)
    channel = f"asws-missed-{uuid.uuid4().hex[:8]}"
    fast = Node("A", redis_url, channel)
    # B's client reconnects a dropped connection after a fixed 1 s (redis-py's own retry).
    slow_client = {"client_name": "node-B", "retry": Retry(ConstantBackoff(1.0), 3)}
    slow = Node("B", redis_url, channel, redis_options=slow_client)
    nodes = [fast, slow]
    await asyncio.gather(*(node.start() for node in nodes))
    admin = Redis.from_url(redis_url, decode_responses=True)
    browser, bystander = Browser(), Browser()
    try:
        await bystander.get_json(slow, "/id")
        untouched = await bystander.ws(slow)
        await expect_open(untouched)
        session_id = (await browser.get_json(fast, "/id"))["id"]
        on_fast, on_slow = await browser.ws(fast), await browser.ws(slow)
        await expect_open(on_fast)
        await expect_open(on_slow)
        resubscribed = slow.registry.stats()["resubscribes"]
        listeners = [c for c in await admin.client_list(_type="pubsub") if c["name"] == "node-B"]
        assert len(listeners) == 1
        await admin.client_kill_filter(_id=listeners[0]["id"])  # B's subscription drops
        assert await fast.registry.close_all_session(session_id) == 1  # B cannot hear it
        await expect_close(on_fast, SESSION_ENDED_CODE)
        await eventually(lambda: slow.registry.stats()["resubscribes"] > resubscribed)
        await expect_close(on_slow, SESSION_ENDED_CODE)
        await expect_open(untouched)
    finally:
        await browser.close()
        await bystander.close()
        await admin.aclose()
        for node in nodes:
            await node.stop()
