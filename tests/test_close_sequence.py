"""Per-key closes reach sockets whose handshake was in flight (the close sequence).

A handshake computes its keys (an identity lookup) before it registers; a
per-key close running in between used to find nothing and the socket lived on.
Here the key provider is held at a gate while the close runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Hashable, Sequence

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

from aiohttp_session_ws import SESSION_ENDED_CODE, SessionWSRegistry
from aiohttp_session_ws.close_sequence import CloseSequence
from aiohttp_session_ws.redis.cluster import ClusterSessionWSRegistry
from aiohttp_session_ws.redis.outbox import Outbox
from aiohttp_session_ws.redis.redis_transport import RedisTransport
from aiohttp_session_ws.redis.transport import CLOSE_COUNTER, Mark
from tests.support.cluster import FAST, Browser, Node, eventually, expect_close, expect_open
from tests.support.memory_transport import MemoryBroker, MemoryTransport
from tests.support.security_nodes import Served, redis_nodes, running
from tests.test_core_units import FakeClock

ALICE = ("identity", "alice")
SLOW_RETRY = Retry(ConstantBackoff(2.0), 3)


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


@pytest.fixture(params=["one node", "two redis nodes"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[tuple[Served, Gate]]]:
    """[where the socket connects, where the close is called], each with its gated provider."""
    if request.param == "one node":
        served = [Served(SessionWSRegistry())]
    else:
        served = redis_nodes(request.getfixturevalue("redis_url"), "BA")
    gates = [Gate() for _ in served]
    for node, gate in zip(served, gates, strict=True):
        node.registry.add_key_provider(gate)
    async with running(served):
        pairs = list(zip(served, gates, strict=True))
        yield pairs if len(pairs) == 2 else pairs * 2


async def test_a_key_closed_while_the_handshake_computes_its_keys_refuses_the_socket(
    nodes: list[tuple[Served, Gate]],
) -> None:
    (connecting_node, gate), (closing_node, _) = nodes
    async with aiohttp.ClientSession() as http:
        connecting = asyncio.ensure_future(http.ws_connect(connecting_node.url / "ws"))
        await asyncio.wait_for(gate.computing.wait(), 10)
        # Nothing is registered under the key yet: the close finds no socket.
        assert await closing_node.registry.close_all_key(ALICE) == 0
        await asyncio.sleep(0.1)  # the close reaches the other node, if any
        gate.open.set()
        ws = await asyncio.wait_for(connecting, 10)
        msg = await ws.receive(timeout=10)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001), msg
        registry = connecting_node.registry
        await eventually(lambda: not registry.sockets_for_key(ALICE), what="unregistered")
        assert registry.stats()["refused"] == {"key_closed": 1}

        # A handshake that began after the close is not refused.
        fresh = await http.ws_connect(connecting_node.url / "ws")
        assert (await fresh.receive_json(timeout=10)) == {"user": None}
        assert len(registry.sockets_for_key(ALICE)) == 1
        await fresh.close()


@pytest.mark.redis
async def test_a_key_close_missed_while_unsubscribed_is_applied_on_resubscribe(
    redis_url: str,
) -> None:
    """Pub/sub drops what a node misses while its subscription is down; the close's
    number in Redis does not. On re-subscribing, the node closes its sockets under the
    key whose handshake began before the close, and only those."""
    channel = f"asws-keys-{uuid.uuid4().hex[:8]}"
    fast = Node("A", redis_url, channel)
    # B's client reconnects a dropped connection after a fixed 2 s (redis-py's own retry).
    slow = Node("B", redis_url, channel, {"client_name": "node-B", "retry": SLOW_RETRY})
    nodes = [fast, slow]
    await asyncio.gather(*(node.start() for node in nodes))
    admin = Redis.from_url(redis_url, decode_responses=True)
    laptop, phone, bob = Browser(), Browser(), Browser()
    try:
        await laptop.get_json(fast, "/login?user=alice")
        await bob.get_json(slow, "/login?user=bob")
        on_fast, on_slow, bobs = await laptop.ws(fast), await laptop.ws(slow), await bob.ws(slow)
        for ws in (on_fast, on_slow, bobs):
            await expect_open(ws)
        resubscribed = slow.registry.stats()["resubscribes"]
        listeners = [c for c in await admin.client_list(_type="pubsub") if c["name"] == "node-B"]
        assert len(listeners) == 1
        await admin.client_kill_filter(_id=listeners[0]["id"])  # B's subscription drops
        assert await fast.registry.close_all_key(ALICE) == 1  # B cannot hear it
        await expect_close(on_fast, SESSION_ENDED_CODE)

        # A new login of alice (the phone) connects to B while B is still deaf: B has
        # not read the close's number yet, so it refuses the socket once (fail closed);
        # the reconnect is marked after the close and is served.
        await phone.get_json(slow, "/login?user=alice")
        await expect_close(await phone.ws(slow), SESSION_ENDED_CODE)
        phones = await phone.ws(slow)
        await expect_open(phones)
        assert slow.registry.stats()["resubscribes"] == resubscribed  # still deaf

        await eventually(lambda: slow.registry.stats()["resubscribes"] > resubscribed)
        await expect_close(on_slow, SESSION_ENDED_CODE)
        await expect_open(bobs)
        await expect_open(phones)
        assert slow.registry.stats()["refused"]["key_closed"] == 1
    finally:
        for browser in (laptop, phone, bob):
            await browser.close()
        await admin.aclose()
        for node in nodes:
            await node.stop()


class CountingTransport(MemoryTransport):
    """The in-process transport, counting round trips that read marks."""

    reads = 0

    async def read_marks(self, names: Sequence[str]) -> list[bytes | None]:
        self.reads += 1
        return await super().read_marks(names)


async def test_the_registration_check_asks_the_broker_once_and_sees_closes_it_did_not_hear() -> (
    None
):
    broker = MemoryBroker()
    here, there = CountingTransport(broker), CountingTransport(broker)
    registry = ClusterSessionWSRegistry(here, node_id="B", **FAST)  # not started: hears nothing
    issuer = ClusterSessionWSRegistry(there, node_id="A", **FAST)
    before = registry.close_mark()
    assert await registry.refuses("sid", [ALICE, ("identity", "bob")], before) is None
    assert here.reads == 1  # revocations, key closes and the counter: one round trip
    await issuer.close_all_key(ALICE)
    assert await registry.refuses("sid", [ALICE], before) == "key_closed"
    assert await registry.refuses("sid", [("identity", "bob")], before) is None
    # That read moved this node's view on: handshakes starting now are not refused.
    assert await registry.refuses("sid", [ALICE], registry.close_mark()) is None
    assert here.reads == 4


@pytest.mark.redis
async def test_redis_numbers_closes_atomically_and_never_goes_back(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    transport = RedisTransport(client, "asws-seq")
    try:
        await transport.write_marks([Mark("keyclose:a", 60, numbered=True), Mark("plain", 60)])
        first, counter, plain = await transport.read_marks(["keyclose:a", CLOSE_COUNTER, "plain"])
        assert first == counter and plain == b"1"
        assert first is not None and int(first) > 1_600_000_000 * 10**6  # not behind the clock
        await transport.publish_close(b"{}", [Mark("keyclose:b", 60, numbered=True)])
        (second,) = await transport.read_marks(["keyclose:b"])
        assert second is not None and int(second) > int(first)
        await client.flushall()  # Redis lost its data (a restart without persistence)
        await transport.write_marks([Mark("keyclose:c", 60, numbered=True)])
        (third,) = await transport.read_marks(["keyclose:c"])
        assert third is not None and int(third) > int(second)
        assert 0 < await client.pttl("asws-seq:keyclose:c") <= 60_000
        assert await client.ttl("asws-seq:" + CLOSE_COUNTER) == -1  # the counter never expires
    finally:
        await client.aclose()


def test_a_key_close_queued_in_the_outbox_is_numbered_when_it_is_sent() -> None:
    """A per-key close issued during an outage waits in the outbox with its marks; the
    one holding the close's number must still ask Redis for a number when re-sent."""
    clock = FakeClock()
    outbox = Outbox(10, clock=clock)
    outbox.add("key", ["identity", "alice"], [Mark("keyclose:x", 60.0, numbered=True)])
    clock.now = 10.0
    (entry,) = outbox.due()
    assert entry.live_marks(clock.now) == [Mark("keyclose:x", 50.0, numbered=True)]
