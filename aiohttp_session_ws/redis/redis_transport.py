"""`RedisTransport`: the cluster's `Transport` over Redis pub/sub, strings and a set.

Redis names, all under `channel`: the channels ``{channel}`` (closes) and
``{channel}:ack:<node>`` (answers), marks as strings ``{channel}:<mark name>``
(``{channel}:revoked:<sha256>``, ``{channel}:keyclose:<sha256>``), the close
sequence's counter ``{channel}:closeseq``, and members as ``{channel}:node:<node>``
strings (expiring) listed in the set ``{channel}:nodes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from .transport import CLOSE_COUNTER, Delivery, Event, Mark, Pong, Subscribed

T = TypeVar("T")

NUMBER_MARKS = """
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local number = redis.call('INCR', KEYS[1])
if number < floor then
  number = floor
  redis.call('SET', KEYS[1], string.format('%.0f', number))
end
local value = string.format('%.0f', number)
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], value, 'PX', ARGV[i - 1])
end
return value
"""
"""Bump the close counter (KEYS[1]) to at least Redis's clock in microseconds, and
write its new value into the numbered marks KEYS[2..] (expiring after ARGV[i-1] ms)."""

POOL_BUSY_DELAY = 0.002
"""Seconds between attempts to get a connection from an exhausted client pool."""


def call_slots(redis: Redis) -> int:
    """How many Redis calls one registry runs at once.

    Half of the client's pool, less the pub/sub connection, at most 64: the rest
    stays free for the app's own use of the client (e.g. `RedisStorage`).
    """
    size = getattr(redis.connection_pool, "max_connections", None)
    if not isinstance(size, int) or size <= 0:
        return 32
    return max(1, min(64, (size - 1) // 2))


def pool_exhausted(exc: Exception) -> bool:
    """True for redis-py's "no free connection in the pool" (not a Redis failure).

    redis-py 5.0 raises a plain ConnectionError with this message; later
    versions raise its subclass MaxConnectionsError.
    """
    return isinstance(exc, MaxConnectionsError) or str(exc) == "Too many connections"


class RedisTransport:
    """Implements `Transport` with one `redis.asyncio.Redis` client (the caller's)."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._slots = asyncio.Semaphore(call_slots(redis))
        self._number_marks = redis.register_script(NUMBER_MARKS)

    def ack_channel(self, node: str) -> str:
        """Where other nodes send `node` their acknowledgements."""
        return f"{self.channel}:ack:{node}"

    def _key(self, mark: str) -> str:
        return f"{self.channel}:{mark}"

    @property
    def _nodes_key(self) -> str:
        return f"{self.channel}:nodes"

    def _node_key(self, node: str) -> str:
        return f"{self.channel}:node:{node}"

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call in a slot, retrying a broken pooled connection once.

        Pooled connections opened before a Redis restart fail on first use (and
        redis-py does not retry pipelines); every call here is idempotent. At
        most `call_slots` calls run at once, so a burst of connects queues here
        instead of exhausting the client's pool. A pool exhausted anyway (the
        app shares the client) is a busy client, not an outage: the call waits
        for a free connection (the caller bounds the wait).
        """
        retried = False
        async with self._slots:
            while True:
                try:
                    return await call()
                except RedisConnectionError as exc:
                    if pool_exhausted(exc):
                        await asyncio.sleep(POOL_BUSY_DELAY)
                    elif retried:
                        raise
                    else:
                        retried = True

    # -- messages ----------------------------------------------------------------

    def subscription(self, node: str) -> RedisSubscription:
        return RedisSubscription(self.redis, self.channel, self.ack_channel(node))

    async def publish_close(self, payload: bytes, marks: Sequence[Mark]) -> None:
        """One round trip: SET each mark with its TTL, then PUBLISH, in that order."""

        async def run() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                await self._queue_marks(pipe, marks)
                pipe.publish(self.channel, payload)
                await pipe.execute()

        await self._call(run)

    async def _queue_marks(self, pipe: Pipeline, marks: Sequence[Mark]) -> None:
        """Queue the writes of `marks`: the numbered ones in one script call, first."""
        numbered = [mark for mark in marks if mark.numbered]
        if numbered:
            await self._number_marks(
                keys=[self._key(CLOSE_COUNTER), *(self._key(m.name) for m in numbered)],
                args=[_ms(m.ttl) for m in numbered],
                client=pipe,
            )
        for mark in marks:
            if not mark.numbered:
                pipe.set(self._key(mark.name), mark.value, px=_ms(mark.ttl))

    async def publish_ack(self, node: str, payload: bytes) -> None:
        await self._call(lambda: self.redis.publish(self.ack_channel(node), payload))

    # -- marks -------------------------------------------------------------------

    async def write_marks(self, marks: Sequence[Mark]) -> None:
        async def run() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                await self._queue_marks(pipe, marks)
                await pipe.execute()

        await self._call(run)

    async def swap_mark(self, mark: Mark) -> bytes | None:
        """GETSET and PEXPIRE in one MULTI (any Redis version; SET ... GET needs 6.2)."""

        async def run() -> bytes | None:
            async with self.redis.pipeline(transaction=True) as pipe:
                key = self._key(mark.name)
                pipe.getset(key, mark.value)
                pipe.pexpire(key, _ms(mark.ttl))
                before, _ = await pipe.execute()
            return before.encode() if isinstance(before, str) else before

        return await self._call(run)

    async def read_marks(self, names: Sequence[str]) -> list[bytes | None]:
        if not names:
            return []
        values = await self._call(lambda: self.redis.mget([self._key(n) for n in names]))
        return [None if v is None else v.encode() if isinstance(v, str) else v for v in values]

    # -- members -----------------------------------------------------------------

    async def announce(self, node: str, ttl: float) -> None:
        async def run() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(self._node_key(node), b"1", px=_ms(ttl))
                pipe.sadd(self._nodes_key, node)
                await pipe.execute()

        await self._call(run)

    async def retire(self, node: str) -> None:
        async def run() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.delete(self._node_key(node))
                pipe.srem(self._nodes_key, node)
                await pipe.execute()

        await self._call(run)

    async def live_nodes(self) -> set[str]:
        """Nodes whose heartbeat key has not expired; forgets the expired ones."""

        async def run() -> set[str]:
            members = sorted(text(m) for m in await self.redis.smembers(self._nodes_key))
            if not members:
                return set()
            values = await self.redis.mget([self._node_key(m) for m in members])
            dead = [m for m, value in zip(members, values, strict=True) if value is None]
            if dead:
                await self.redis.srem(self._nodes_key, *dead)
            return {m for m, value in zip(members, values, strict=True) if value is not None}

        return await self._call(run)

    async def drop_idle(self) -> None:
        """Disconnect the client pool's idle connections (they reconnect when used)."""
        await self.redis.connection_pool.disconnect(inuse_connections=False)


class RedisSubscription:
    """A redis-py `PubSub` on the close channel and one node's ack channel."""

    def __init__(self, redis: Redis, channel: str, ack_channel: str) -> None:
        self._pubsub = redis.pubsub()
        self.channel = channel
        self.ack_channel = ack_channel

    async def open(self) -> None:
        await self._pubsub.subscribe(self.channel, self.ack_channel)

    async def receive(self, timeout: float | None) -> Event | None:
        """The next event; with a `timeout`, None once it passed (or early, after
        a message of no interest, such as redis-py's own health-check answer)."""
        while True:
            message = await self._pubsub.get_message(timeout=timeout)
            event = self._event(message) if message is not None else None
            if event is not None or timeout is not None:
                return event

    def _event(self, message: dict[str, object]) -> Event | None:
        kind = text(message.get("type"))
        if kind == "message":
            channel = text(message.get("channel"))
            return Delivery(channel, channel == self.ack_channel, message.get("data"))
        if kind == "subscribe" and _count(message.get("data")) >= 2:
            return Subscribed()
        if kind == "pong":
            return Pong(text(message.get("data")))
        return None

    async def ping(self, token: str) -> None:
        await self._pubsub.ping(token)

    async def close(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def abort(self) -> None:
        connection = self._pubsub.connection
        if connection is not None:
            await connection.disconnect()


def text(value: object) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
