"""Three aiohttp nodes sharing one real Redis, with real client websockets over loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from aiohttp_session_ws import SESSION_ENDED_CODE, SHUTDOWN_CODE
from aiohttp_session_ws.redis import ClusterCloseResult
from aiohttp_session_ws.websocket import _DIRECT_READS
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
from tests.test_websocket import reader_tasks

pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster(redis_url: str) -> AsyncIterator[list[Node]]:
    nodes = await start_cluster(redis_url, channel=f"asws-test-{uuid.uuid4().hex[:8]}")
    yield nodes
    for node in nodes:
        await node.stop()


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    made = [Browser() for _ in range(4)]
    yield made
    for browser in made:
        await browser.close()


async def test_reset_on_one_node_closes_that_session_everywhere(
    cluster: list[Node], browsers: list[Browser]
) -> None:
    a, b, c = cluster
    x, y = browsers[:2]
    x_id = (await x.get_json(a, "/id"))["id"]
    await y.get_json(a, "/id")
    xs = [await x.ws(node) for node in cluster]
    ys = [await y.ws(node) for node in cluster]
    await eventually(lambda: sockets(cluster) == 6, what="6 sockets registered")
    stale = x.cookie(a)

    assert await x.get(a, "/reset") == "reset"
    for ws in xs:
        await expect_close(ws, SESSION_ENDED_CODE)
    for ws in ys:
        await expect_open(ws)
    assert b.registry.stats()["remote_closes"] == 1
    assert c.registry.stats()["remote_closes"] == 1
    assert a.registry.stats()["remote_closes"] == 0  # the publisher closed its own once

    # A tab reconnecting to C with the pre-reset cookie is refused with 4001.
    late = Browser(cookie=stale)
    try:
        ws = await late.ws(c)
        await expect_close(ws, SESSION_ENDED_CODE)
        assert c.registry.stats()["refused"]["revoked"] == 1
        assert x_id not in c.registry
    finally:
        await late.close()
    # The cookie from the reset response works on every node.
    fresh = [await x.ws(node) for node in cluster]
    for ws in fresh:
        await expect_open(ws)
    for ws in ys + fresh:
        await ws.close()


async def test_acknowledged_count_equals_sockets_across_nodes(
    cluster: list[Node], browsers: list[Browser]
) -> None:
    a, b, c = cluster
    x, y = browsers[:2]
    x_id = (await x.get_json(a, "/id"))["id"]
    await y.get_json(a, "/id")
    xs = [await x.ws(node) for node in (a, a, b, c, c, c)]
    y_ws = await y.ws(b)
    await eventually(lambda: sockets(cluster) == 7, what="7 sockets registered")

    closing = closes(xs, SESSION_ENDED_CODE)
    result = await b.registry.close_all_session(x_id, wait=3.0)

    assert isinstance(result, ClusterCloseResult)
    assert result.closed == 6
    assert result.local == 1
    assert (result.nodes_answered, result.nodes_expected) == (3, 3)
    assert result.complete
    await closing
    await expect_open(y_ws)
    # Nothing left to close: every node answers with 0.
    again = await c.registry.close_all_session(x_id, wait=3.0)
    assert (again.closed, again.nodes_answered) == (0, 3)
    await y_ws.close()


async def test_plain_call_keeps_the_core_int_contract(
    cluster: list[Node], browsers: list[Browser]
) -> None:
    a, b, _ = cluster
    x = browsers[0]
    x_id = (await x.get_json(a, "/id"))["id"]
    xs = [await x.ws(a), await x.ws(a), await x.ws(b)]
    await eventually(lambda: sockets(cluster) == 3, what="3 sockets registered")
    count = await a.registry.close_all_session(x_id)
    assert type(count) is int and count == 2  # this node's sockets, as in the core
    for ws in xs:
        await expect_close(ws, SESSION_ENDED_CODE)


async def test_identity_close_reaches_every_node_and_revokes_its_sessions(
    cluster: list[Node], browsers: list[Browser]
) -> None:
    a, b, c = cluster
    alice_laptop, alice_phone, bob, anon = browsers
    await alice_laptop.get_json(a, "/login?user=alice")
    await alice_phone.get_json(c, "/login?user=alice")
    await bob.get_json(b, "/login?user=bob")
    await anon.get_json(b, "/id")
    alice = [await alice_laptop.ws(a), await alice_laptop.ws(b), await alice_phone.ws(c)]
    others = [await bob.ws(a), await bob.ws(c), await anon.ws(a)]
    await eventually(lambda: sockets(cluster) == 6, what="6 sockets registered")

    closing = closes(alice, SESSION_ENDED_CODE)
    result = await b.registry.close_all_key(("identity", "alice"), wait=3.0)

    assert (result.closed, result.nodes_answered, result.nodes_expected) == (3, 3, 3)
    await closing
    for ws in others:
        await expect_open(ws)
    # Both of alice's sessions are refused on nodes that never held their sockets.
    for browser, node in ((alice_laptop, c), (alice_phone, a), (alice_phone, b)):
        ws = await browser.ws(node)
        await expect_close(ws, SESSION_ENDED_CODE)
    for ws in others:
        await ws.close()


async def test_shutdown_stops_the_listener_and_leaves_the_cluster(
    cluster: list[Node], browsers: list[Browser]
) -> None:

    a, b, c = cluster
    x = browsers[0]
    x_id = (await x.get_json(b, "/id"))["id"]
    on_a = await x.ws(a)
    on_b = await x.ws(b)
    await eventually(lambda: sockets(cluster) == 2, what="2 sockets registered")
    registry = a.registry

    closing = closes([on_a], SHUTDOWN_CODE)
    await a.stop()

    await closing
    names = [task.get_name() for task in asyncio.all_tasks()]
    assert not [name for name in names if "aiohttp_session_ws.redis" in name and " A" in name]
    assert registry.stats()["subscribed"] is False
    assert registry.stats()["pending_closes"] == 0
    # A left: a close from B expects two nodes and gets both answers.
    closing = closes([on_b], SESSION_ENDED_CODE)
    result = await b.registry.close_all_session(x_id, wait=3.0)
    assert (result.closed, result.nodes_answered, result.nodes_expected) == (1, 2, 2)
    await closing
    cluster.remove(a)
    assert c.registry.stats()["remote_closes"] == 1


async def test_clients_that_decode_responses_work_too(redis_url: str) -> None:
    nodes = await start_cluster(
        redis_url, f"asws-test-{uuid.uuid4().hex[:8]}", redis_options={"decode_responses": True}
    )
    x = Browser()
    try:
        a, b, c = nodes
        await x.get_json(a, "/login?user=carol")
        xs = [await x.ws(node) for node in nodes]
        await eventually(lambda: sockets(nodes) == 3, what="3 sockets registered")
        closing = closes(xs, SESSION_ENDED_CODE)
        result = await c.registry.close_all_key(("identity", "carol"), wait=3.0)
        assert (result.closed, result.nodes_answered, result.nodes_expected) == (3, 3, 3)
        await closing
        await expect_close(await x.ws(b), SESSION_ENDED_CODE)  # the session stays revoked
    finally:
        await x.close()
        for node in nodes:
            await node.stop()


async def test_connect_burst_beyond_the_client_pool_still_checks_revocations(
    redis_url: str,
) -> None:
    """A node restarted into a reconnect storm knows no revocations but Redis's.

    With redis-py's default non-blocking pool (100 connections in redis-py 8; 6
    here), a burst of connects must not exhaust the pool: a `MaxConnectionsError`
    is not an outage, and taking it for one would skip the revocation check and
    let revoked sessions back in.
    """

    channel = f"asws-test-{uuid.uuid4().hex[:8]}"
    small_pool = {"max_connections": 6}
    (a,) = await start_cluster(redis_url, channel, n=1, redis_options=small_pool)
    revoked, fresh = Browser(), Browser()
    late: Node | None = None
    try:
        await revoked.get_json(a, "/id")
        stale = revoked.cookie(a)
        assert await revoked.get(a, "/reset") == "reset"
        await fresh.get_json(a, "/id")
        # C starts after the close was published: only Redis knows the id is revoked.
        late = Node("C", redis_url, channel, small_pool)
        await late.start()
        stale_browser = Browser(cookie=stale)
        try:
            stale_ws, fresh_ws = await asyncio.gather(
                asyncio.gather(*(stale_browser.ws(late) for _ in range(40))),
                asyncio.gather(*(fresh.ws(late) for _ in range(40))),
            )
            await asyncio.gather(*(expect_close(ws, SESSION_ENDED_CODE) for ws in stale_ws))
            await asyncio.gather(*(expect_open(ws) for ws in fresh_ws))
            stats = late.registry.stats()
            assert stats["refused"]["revoked"] == 40
            assert stats["sockets"] == 40
            assert stats["redis_up"] is True
            await asyncio.gather(*(ws.close() for ws in fresh_ws))
        finally:
            await stale_browser.close()
    finally:
        await revoked.close()
        await fresh.close()
        for node in (a, late):
            if node is not None:
                await node.stop()


async def test_a_pool_busy_with_the_apps_own_calls_is_waited_for_not_an_outage(
    redis_url: str,
) -> None:
    """The app's slow commands fill the shared client's pool: a connect's revocation
    check waits for a free connection (within redis_timeout) instead of skipping Redis."""

    channel = f"asws-test-{uuid.uuid4().hex[:8]}"
    (a,) = await start_cluster(redis_url, channel, n=1)
    revoked = Browser()
    late = Node("C", redis_url, channel, {"max_connections": 3})
    try:
        await revoked.get_json(a, "/id")
        stale = Browser(cookie=revoked.cookie(a))
        assert await revoked.get(a, "/reset") == "reset"
        await late.start()  # its pub/sub connection is one of the three
        key = f"{channel}:nothing"
        busy = [asyncio.ensure_future(late.redis.blpop([key], timeout=0.3)) for _ in range(2)]
        await asyncio.sleep(0.05)
        try:
            ws = await stale.ws(late)
            await expect_close(ws, SESSION_ENDED_CODE)
        finally:
            await stale.close()
            await asyncio.gather(*busy)
        stats = late.registry.stats()
        assert stats["refused"]["revoked"] == 1
        assert stats["redis_up"] is True
    finally:
        await revoked.close()
        await late.stop()
        await a.stop()


@pytest.mark.skipif(not _DIRECT_READS, reason="Python 3.10: the reader task reads for every socket")
async def test_a_reading_handler_on_a_node_reads_itself(
    cluster: list[Node], browsers: list[Browser]
) -> None:
    # The node asks Redis whether the id is revoked after the upgrade; the handler
    # (an echo with `async for`) reads from aiohttp itself once it has the socket,
    # as on a single node: no reader task per socket.
    a = cluster[0]
    x = browsers[0]
    await x.get_json(a, "/id")
    wss = [await x.ws(a) for _ in range(3)]
    for ws in wss:
        await expect_open(ws)
    assert reader_tasks() == []
    assert await x.get(a, "/reset") == "reset"
    for ws in wss:
        await expect_close(ws, SESSION_ENDED_CODE)
