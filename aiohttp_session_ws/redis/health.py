"""Redis health: capped exponential backoff with jitter, and logging an outage once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..logs import RateLimitedLog as SharedRateLimitedLog
from ..options import check_seconds

logger = logging.getLogger("aiohttp_session_ws.redis")


class Backoff:
    """Delays for reconnect attempts: base * 2**n, capped, with "equal jitter".

    Each delay is drawn uniformly from [d/2, d], so nodes that lost Redis together
    do not all reconnect in the same instant.
    """

    def __init__(
        self,
        base: float,
        cap: float,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        check_seconds("reconnect_base", base)
        check_seconds("reconnect_cap", cap)
        if base > cap:
            raise ValueError(
                f"reconnect_base ({base!r}) must not exceed reconnect_cap ({cap!r}); "
                "e.g. reconnect_base=0.1, reconnect_cap=10"
            )
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rand = rand

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self.cap, self.base * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return self._rand(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0


class Health:
    """Whether Redis answered lately; logs each outage once, when it starts and ends."""

    def __init__(self, node: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self.up = True
        self.outages = 0
        self.on_recovery: Callable[[], None] | None = None
        """Called after each outage, at the first success (the registry's recovery)."""
        self._since = 0.0
        self._clock = clock

    def failed(self, exc: BaseException, doing: str) -> None:
        """Record a failed Redis call; the first after a success logs a warning."""
        if not self.up:
            logger.debug("node %s: Redis still unreachable (%s)", self.node, doing)
            return
        self.up = False
        self.outages += 1
        self._since = self._clock()
        logger.warning(
            "node %s: Redis unreachable while %s (%s); local closes keep working, "
            "cluster closes and shared revocations are paused; reconnecting with backoff",
            self.node,
            doing,
            describe(exc),
        )

    def succeeded(self) -> None:
        """Record a successful Redis call; the first after an outage logs the recovery."""
        if self.up:
            return
        self.up = True
        logger.warning(
            "node %s: Redis reachable again after %.1fs; cluster closes resumed",
            self.node,
            self._clock() - self._since,
        )
        if self.on_recovery is not None:
            self.on_recovery()


class RateLimitedLog(SharedRateLimitedLog):
    """`aiohttp_session_ws.logs.RateLimitedLog` on the Redis logger."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(logger, interval, clock)


def describe(exc: BaseException) -> str:
    """A Redis call's error, safe to log: its type, and Redis's or the socket's own words.

    redis-py puts a failed pipeline command, key names and values included, into
    the error's message ("Command # 1 (SET ...) of pipeline caused error: ..."):
    that part is dropped, so no id, digest or value reaches a log line.
    """
    name = type(exc).__name__
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        text = str(exc)
    elif isinstance(exc, ResponseError):
        text = str(exc).rpartition("caused error: ")[2]
    else:
        return name
    return f"{name}: {text}" if text else name
