"""Faults that used to strand sockets: a deaf subscription, a stall or an outage at logout,
and a worker that waits for answers without starting its registry. Real redis-server,
real nodes and sockets; a TCP proxy between node B and Redis where B must go deaf."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aiohttp_session_ws import SESSION_ENDED_CODE
from aiohttp_session_ws.redis import ClusterPublishError, RedisSessionWSRegistry
from tests.support.cluster import (
    DEAF_BOUND,
    FAST,
    RECOVERY_BOUND,
    Browser,
    Node,
    eventually,
    expect_close,
    expect_open,
)
from tests.support.proxy import SilentProxy
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

MARGIN = 2.0
"""Slack for a shared 2-core machine."""


@pytest.fixture
def channel() -> str:
    return f"asws-faults-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[SilentProxy]:
    made = SilentProxy(redis_server.port)
    await made.start()
    yield made
    await made.stop()


@pytest.fixture
async def nodes() -> AsyncIterator[list[Node]]:
    """Nodes a test starts; stopped (in reverse) at the end."""
    started: list[Node] = []
    yield started
    for node in reversed(started):
        await node.stop()


async def start(nodes: list[Node], name: str, url: str, channel: str) -> Node:
    node = Node(name, url, channel)
    await node.start()
    nodes.append(node)
    return node


async def answers(node: Node) -> tuple[int, int]:
    """(nodes answered, nodes expected) for a probe close from `node`."""
    probe = await node.registry.close_all_session(f"probe-{uuid.uuid4().hex}", wait=1.0)
    return probe.nodes_answered, probe.nodes_expected


async def test_a_silently_dead_subscription_is_noticed_and_reconciled(
    redis_url: str, proxy: SilentProxy, channel: str, nodes: list[Node]
) -> None:
    """B's connections to Redis go silent (no FIN, no RST) and new ones work, as after a
    NAT forgot the flows: B notices within the bound, re-subscribes and closes the
    socket of the session that A logged out meanwhile."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", proxy.url, channel)
    x = Browser()
    try:
        await x.get_json(a, "/id")
        on_a, on_b = await x.ws(a), await x.ws(b)
        await expect_open(on_a)
        await expect_open(on_b)

        assert proxy.silence() >= 1
        silenced = time.monotonic()
        assert await x.get(a, "/reset") == "reset"
        await expect_close(on_a, SESSION_ENDED_CODE)

        await expect_close(on_b, SESSION_ENDED_CODE, timeout=DEAF_BOUND + RECOVERY_BOUND + MARGIN)
        took = time.monotonic() - silenced
        stats = b.registry.stats()
        assert stats["liveness_failures"] >= 1, stats
        assert took < DEAF_BOUND + RECOVERY_BOUND + MARGIN
        # B hears closes again, over its new subscription.
        await eventually(lambda: b.registry.stats()["subscribed"], what="B subscribed again")
        y = Browser()
        try:
            y_id = (await y.get_json(a, "/id"))["id"]
            y_on_b = await y.ws(b)
            await expect_open(y_on_b)
            result = await a.registry.close_all_session(y_id, wait=2.0)
            assert (result.closed, result.nodes_answered, result.nodes_expected) == (1, 2, 2)
            await expect_close(y_on_b, SESSION_ENDED_CODE)
        finally:
            await y.close()
    finally:
        await x.close()


async def test_a_deaf_node_does_not_pass_as_live_and_catches_up(
    redis_url: str, proxy: SilentProxy, channel: str, nodes: list[Node]
) -> None:
    """B's subscription is cut (open and re-made ones) while its pool still reaches Redis,
    so its heartbeats would still get through: B must stop being counted by `wait=`
    within the bound, still close the sessions revoked meanwhile (from Redis), and be
    counted again once it hears."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", proxy.url, channel)
    x = Browser()
    try:
        await x.get_json(a, "/id")
        on_b = await x.ws(b)
        await expect_open(on_b)
        assert await answers(a) == (2, 2)

        proxy.deafen_subscribers()
        await asyncio.sleep(DEAF_BOUND + MARGIN / 2)
        await eventually(
            lambda: b.registry.stats()["liveness_failures"] >= 1,
            timeout=MARGIN,
            what="B to notice it is deaf",
        )
        assert b.registry.stats()["subscribed"] is False
        assert await answers(a) == (1, 1)  # not counted while it cannot hear

        assert await x.get(a, "/reset") == "reset"  # B cannot hear this one
        await expect_close(on_b, SESSION_ENDED_CODE, timeout=RECOVERY_BOUND + MARGIN)

        proxy.hear()
        await eventually(lambda: b.registry.stats()["subscribed"], timeout=RECOVERY_BOUND + MARGIN)
        await eventually(lambda: b.registry.stats()["redis_up"], timeout=MARGIN)
        start_ = time.monotonic()
        while await answers(a) != (2, 2):
            assert time.monotonic() - start_ < FAST["heartbeat_interval"] + MARGIN
    finally:
        await x.close()


async def test_a_stall_during_a_logout_is_reconciled_after_recovery(
    redis_url: str, redis_server: RedisServer, channel: str, nodes: list[Node]
) -> None:
    """Redis hangs (SIGSTOP) for 1.5 s while A logs a session out: after Redis resumes,
    B closes that session's socket and refuses its cookie."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", redis_url, channel)
    x = Browser()
    try:
        await x.get_json(a, "/id")
        stale = x.cookie(a)
        on_a, on_b = await x.ws(a), await x.ws(b)
        await expect_open(on_a)
        await expect_open(on_b)
        redis_server.pause()
        try:
            assert await x.get(a, "/reset") == "reset"
            await expect_close(on_a, SESSION_ENDED_CODE)
            await asyncio.sleep(1.5)
        finally:
            redis_server.resume()
        await expect_close(on_b, SESSION_ENDED_CODE, timeout=RECOVERY_BOUND + MARGIN)
        late = Browser(cookie=stale)
        try:
            await expect_close(await late.ws(b), SESSION_ENDED_CODE)
        finally:
            await late.close()
    finally:
        await x.close()


async def test_an_outage_at_logout_is_replayed_from_the_outbox(
    redis_url: str, redis_server: RedisServer, channel: str, nodes: list[Node]
) -> None:
    """Redis is killed as A logs a session out, and back (empty) 1.5 s later: A's queued
    close reaches B, and the pre-logout cookie is refused on B and on a node started
    after the outage."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", redis_url, channel)
    x = Browser()
    try:
        x_id = (await x.get_json(a, "/id"))["id"]
        stale = x.cookie(a)
        on_a, on_b = await x.ws(a), await x.ws(b)
        await expect_open(on_a)
        await expect_open(on_b)
        redis_server.kill()
        with pytest.raises(ClusterPublishError) as failed:
            await a.registry.close_all_session(x_id)
        assert failed.value.queued
        assert a.registry.stats()["outbox"] == 1
        await expect_close(on_a, SESSION_ENDED_CODE)
        await asyncio.sleep(1.5)
        await expect_open(on_b)
        redis_server.start()
        await expect_close(on_b, SESSION_ENDED_CODE, timeout=RECOVERY_BOUND + MARGIN)
        await eventually(lambda: a.registry.stats()["outbox"] == 0, timeout=MARGIN)
        c = await start(nodes, "C", redis_url, channel)
        for node in (b, c):
            late = Browser(cookie=stale)
            try:
                await expect_close(await late.ws(node), SESSION_ENDED_CODE)
            finally:
                await late.close()
    finally:
        await x.close()


async def test_a_worker_that_never_started_its_registry_gets_the_answers(
    redis_url: str, channel: str, nodes: list[Node]
) -> None:
    """A background job builds a registry without starting it and closes a session with
    `wait=`: the web nodes' answers reach it."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", redis_url, channel)
    x = Browser()
    client = Redis.from_url(redis_url)
    worker = RedisSessionWSRegistry(client, channel=channel, **FAST)
    try:
        x_id = (await x.get_json(a, "/id"))["id"]
        sockets = [await x.ws(a), await x.ws(b), await x.ws(b)]
        for ws in sockets:
            await expect_open(ws)
        result = await worker.close_all_session(x_id, wait=2.0)
        assert (result.closed, result.local) == (3, 0), result
        assert (result.nodes_answered, result.nodes_expected) == (3, 3), result
        for ws in sockets:
            await expect_close(ws, SESSION_ENDED_CODE)
        keyed = await worker.close_all_key(("identity", "nobody"), wait=2.0)
        assert keyed.complete and keyed.closed == 0
    finally:
        await x.close()
        await client.aclose()


# -- per-user ("log out everywhere") closes: the same faults, the same recovery --------

ALICE = ("identity", "alice")


async def logged_in(node: Node, user: str) -> Browser:
    browser = Browser()
    await browser.get_json(node, f"/login?user={user}")
    return browser


async def test_a_key_close_reaches_a_silently_deaf_node_after_it_notices(
    redis_url: str, proxy: SilentProxy, channel: str, nodes: list[Node]
) -> None:
    """B's connections to Redis go silent and A closes a user everywhere: B notices
    within the bound and closes the user's socket from the close's number in Redis;
    bob's socket, and a socket of the user's new login after the close, stay open."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", proxy.url, channel)
    laptop, bob = await logged_in(a, "alice"), await logged_in(b, "bob")
    phone: Browser | None = None
    try:
        on_b, bobs = await laptop.ws(b), await bob.ws(b)
        await expect_open(on_b)
        await expect_open(bobs)
        assert proxy.silence() >= 1
        await a.registry.close_all_key(ALICE)
        await expect_close(on_b, SESSION_ENDED_CODE, timeout=DEAF_BOUND + RECOVERY_BOUND + MARGIN)
        assert b.registry.stats()["liveness_failures"] >= 1
        await expect_open(bobs)
        phone = await logged_in(a, "alice")
        phones = await phone.ws(b)
        await expect_open(phones)
        await asyncio.sleep(DEAF_BOUND)  # B's next checks keep it
        await expect_open(phones)
    finally:
        for browser in (laptop, bob, phone):
            if browser is not None:
                await browser.close()


async def test_a_key_close_during_an_outage_reaches_the_other_node_after_recovery(
    redis_url: str, redis_server: RedisServer, channel: str, nodes: list[Node]
) -> None:
    """Redis is killed as A closes a user everywhere, and back (empty) 1.5 s later: A's
    queued close reaches B, which closes the user's socket and leaves bob's open."""
    a = await start(nodes, "A", redis_url, channel)
    b = await start(nodes, "B", redis_url, channel)
    alice, bob = await logged_in(a, "alice"), await logged_in(b, "bob")
    try:
        on_a, on_b, bobs = await alice.ws(a), await alice.ws(b), await bob.ws(b)
        for ws in (on_a, on_b, bobs):
            await expect_open(ws)
        redis_server.kill()
        with pytest.raises(ClusterPublishError) as failed:
            await a.registry.close_all_key(ALICE)
        assert failed.value.queued and failed.value.local_closed == 1
        await expect_close(on_a, SESSION_ENDED_CODE)
        await asyncio.sleep(1.5)
        await expect_open(on_b)
        redis_server.start()
        await expect_close(on_b, SESSION_ENDED_CODE, timeout=RECOVERY_BOUND + MARGIN)
        await expect_open(bobs)
    finally:
        await alice.close()
        await bob.close()
