"""Broker calls bounded in time, each recorded in the broker's `Health`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .health import Health

T = TypeVar("T")


class BoundedCalls:
    """Runs broker calls within `timeout` seconds (`redis_timeout`), recording health.

    A call that fails or overruns marks the broker down (logged once per
    outage) and raises; one that succeeds marks it up again.
    """

    def __init__(self, health: Health, timeout: float) -> None:
        self.health = health
        self.timeout = timeout

    async def __call__(self, call: Callable[[], Awaitable[T]], doing: str) -> T:
        """Await `call()` within `timeout`; `doing` names it in the outage log."""
        try:
            result = await asyncio.wait_for(call(), self.timeout)
        except Exception as exc:
            self.health.failed(exc, doing)
            raise
        self.health.succeeded()
        return result
