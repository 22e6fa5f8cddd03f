"""An in-process `Transport`: proof that the cluster registry needs nothing else of Redis.

Nodes of one `MemoryBroker` share its marks, members and channel, as nodes of one
Redis do. For tests only (one process, no expiry of members).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiohttp_session_ws.redis.transport import (
    CLOSE_COUNTER,
    Delivery,
    Event,
    Mark,
    Pong,
    Subscribed,
)


class MemoryBroker:
    def __init__(self) -> None:
        self.marks: dict[str, tuple[bytes, float]] = {}
        self.members: dict[str, float] = {}
        self.counter = 0
        self.queues: dict[str, asyncio.Queue[Event]] = {}

    def transport(self) -> MemoryTransport:
        return MemoryTransport(self)


class MemoryTransport:
    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    def subscription(self, node: str) -> MemorySubscription:
        return MemorySubscription(self.broker, node)

    async def publish_close(self, payload: bytes, marks: Sequence[Mark]) -> None:
        await self.write_marks(marks)
        for queue in self.broker.queues.values():
            queue.put_nowait(Delivery("closes", False, payload))

    async def publish_ack(self, node: str, payload: bytes) -> None:
        queue = self.broker.queues.get(node)
        if queue is not None:
            queue.put_nowait(Delivery(f"acks:{node}", True, payload))

    async def write_marks(self, marks: Sequence[Mark]) -> None:
        number = b""
        if any(mark.numbered for mark in marks):  # the close sequence's next number
            self.broker.counter += 1
            number = str(self.broker.counter).encode()
            self.broker.marks[CLOSE_COUNTER] = (number, float("inf"))
        for mark in marks:
            value = number if mark.numbered else mark.value
            self.broker.marks[mark.name] = (value, time.monotonic() + mark.ttl)

    async def swap_mark(self, mark: Mark) -> bytes | None:
        (before,) = await self.read_marks([mark.name])
        self.broker.marks[mark.name] = (mark.value, time.monotonic() + mark.ttl)
        return before

    async def read_marks(self, names: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        found = [self.broker.marks.get(name) for name in names]
        return [None if f is None or f[1] <= now else f[0] for f in found]

    async def announce(self, node: str, ttl: float) -> None:
        self.broker.members[node] = time.monotonic() + ttl

    async def retire(self, node: str) -> None:
        self.broker.members.pop(node, None)

    async def live_nodes(self) -> set[str]:
        now = time.monotonic()
        return {node for node, until in self.broker.members.items() if until > now}

    async def drop_idle(self) -> None:
        pass


class MemorySubscription:
    def __init__(self, broker: MemoryBroker, node: str) -> None:
        self.broker = broker
        self.node = node
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def open(self) -> None:
        self.broker.queues[self.node] = self.queue
        self.queue.put_nowait(Subscribed())

    async def receive(self, timeout: float | None) -> Event | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def ping(self, token: str) -> None:
        self.queue.put_nowait(Pong(token))

    async def close(self) -> None:
        if self.broker.queues.get(self.node) is self.queue:
            del self.broker.queues[self.node]

    async def abort(self) -> None:
        await self.close()
