"""Redis faults around a batch of logouts, shared by the chaos tests and `bench recovery`.

A fault breaks Redis, runs the logouts it is given while Redis is broken,
repairs Redis and returns when it did (on `clock`); the silent link returns
when the link went silent, since Redis itself never stopped answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tests.support.proxy import SilentProxy
from tests.support.redis_server import RedisServer
from tests.support.sentinel import SentinelSet

Logouts = Callable[[], Awaitable[None]]
Fault = Callable[[Logouts], Awaitable[float]]

OUTAGE = 1.5
"""Seconds Redis stays hung or dead in a stall or a kill."""


def silence(proxy: SilentProxy, clock: Callable[[], float] = time.monotonic) -> Fault:
    """The proxy's open connections go silent (no FIN, no RST) just before the logouts."""

    async def fault(logouts: Logouts) -> float:
        silenced = clock()
        proxy.silence()
        await logouts()
        return silenced

    return fault


def stall(redis: RedisServer, clock: Callable[[], float] = time.monotonic) -> Fault:
    """Redis hangs (SIGSTOP) for `OUTAGE` seconds while the logouts run."""

    async def fault(logouts: Logouts) -> float:
        redis.pause()
        try:
            began = clock()
            await logouts()
            await asyncio.sleep(max(0.0, OUTAGE - (clock() - began)))
        finally:
            redis.resume()
        return clock()

    return fault


def kill(redis: RedisServer, clock: Callable[[], float] = time.monotonic) -> Fault:
    """Redis is killed (SIGKILL) at the logouts and back, empty, `OUTAGE` seconds later."""

    async def fault(logouts: Logouts) -> float:
        redis.kill()
        began = clock()
        await logouts()
        await asyncio.sleep(max(0.0, OUTAGE - (clock() - began)))
        await asyncio.to_thread(redis.start)
        return clock()

    return fault


class Failover:
    """The Sentinel-managed master is killed at the logouts; returns once a sentinel names
    the promoted replica. The old master then rejoins as a replica in the background,
    awaited before the next failover (or by `settled`)."""

    def __init__(self, sentinels: SentinelSet, clock: Callable[[], float] = time.monotonic):
        self.sentinels = sentinels
        self.clock = clock
        self._rejoining: asyncio.Future[None] | None = None

    async def __call__(self, logouts: Logouts) -> float:
        await self.settled()
        old = await asyncio.to_thread(self.sentinels.kill_master)
        await logouts()
        await asyncio.to_thread(self.sentinels.wait_failover, old.port)
        promoted = self.clock()
        self._rejoining = asyncio.ensure_future(asyncio.to_thread(self.sentinels.rejoin, old))
        return promoted

    async def settled(self) -> None:
        """The last failover's old master is a replica again."""
        if self._rejoining is not None:
            rejoining, self._rejoining = self._rejoining, None
            await rejoining
