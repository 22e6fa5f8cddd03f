"""Login throttling per client address and per account, with the `limits` library.

Two moving windows: every login POST counts against its client address
(`Settings.login_attempts_per_address`), and every failed login counts against
the submitted username, known or not (`Settings.login_failures_per_account`), from
any address. A refused attempt is answered 429 with `Retry-After` before any
password is hashed, so a flood costs the server almost nothing. In memory for one
process, in Redis (shared by every node) with `--redis`.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

KEY_PREFIX = "demo_auth_login"


def parse_rate(rate: str, what: str) -> RateLimitItem:
    """`rate` ("10/minute", "5 per 30 seconds") as a limit; ValueError saying what to pass."""
    try:
        return parse(rate)
    except ValueError:
        raise ValueError(
            f"{what} must be a rate such as '10/minute' or '5 per 30 seconds', got {rate!r}"
        ) from None


def make_storage(redis_url: str | None) -> Storage:
    """In-memory storage, or Redis at `redis_url` (through redis-py's asyncio client)."""
    if redis_url is None:
        return MemoryStorage()
    scheme, sep, rest = redis_url.partition("://")
    if not sep or scheme not in {"redis", "rediss"}:
        raise ValueError("login throttling needs a redis:// or rediss:// URL")
    return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix=KEY_PREFIX)


class LoginThrottle:
    """Decides whether a login attempt may go ahead, and for how long it may not."""

    def __init__(self, storage: Storage, per_address: str, per_account: str) -> None:
        self.limiter = MovingWindowRateLimiter(storage)
        self.per_address = parse_rate(per_address, "login_attempts_per_address")
        self.per_account = parse_rate(per_account, "login_failures_per_account")

    async def attempt(self, address: str, username: str) -> int | None:
        """Count an attempt from `address`; None if it may go ahead, else the seconds
        to wait (its `Retry-After`): the address or the account is over its limit."""
        if not await self.limiter.hit(self.per_address, "address", address):
            return await self._retry_after(self.per_address, "address", address)
        if not await self.limiter.test(self.per_account, "account", username):
            return await self._retry_after(self.per_account, "account", username)
        return None

    async def failed(self, username: str) -> None:
        """Count a failed login against the account."""
        await self.limiter.hit(self.per_account, "account", username)

    async def _retry_after(self, limit: RateLimitItem, *identifiers: str) -> int:
        stats = await self.limiter.get_window_stats(limit, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))
