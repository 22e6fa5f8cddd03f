"""Per-user login generations: "log out everywhere" bumps one, stale sessions stop counting.

A session remembers the generation it logged in with (inside its identity);
`policy.DemoAuthorizationPolicy` accepts it only while that is still the user's
current generation. That is what makes "log out everywhere" log out the other
sessions over HTTP too, even with cookie sessions, which keep nothing server-side.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis


class Generations(Protocol):
    """Where the current generation of each user is kept."""

    async def current(self, user: str) -> int: ...

    async def bump(self, user: str) -> int: ...


class MemoryGenerations:
    """Generations in this process's memory (single-node demo)."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}

    async def current(self, user: str) -> int:
        return self._values.get(user, 0)

    async def bump(self, user: str) -> int:
        self._values[user] = self._values.get(user, 0) + 1
        return self._values[user]


class RedisGenerations:
    """Generations in Redis, shared by every node of the cluster."""

    def __init__(self, redis: Redis, prefix: str = "demo_auth:generation:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def current(self, user: str) -> int:
        value = await self.redis.get(self.prefix + user)
        return int(value) if value is not None else 0

    async def bump(self, user: str) -> int:
        return int(await self.redis.incr(self.prefix + user))
