"""Bounded, time-limited memory of revoked websocket ids."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .options import check_seconds


class RevokedIds:
    """Remembers revoked ids for `ttl` seconds, holding at most `max_size` of them.

    Entries expire in insertion order, so expiry and eviction are both O(1)
    per entry. When the cap is reached the oldest revocation is forgotten first.
    """

    def __init__(
        self,
        ttl: float = 600.0,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("revocation max_size must be at least 1")
        self.ttl = check_seconds("revocation ttl", ttl)
        self.max_size = max_size
        self._clock = clock
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()

    def add(self, key: Hashable) -> None:
        """Revoke `key` (again) for `ttl` seconds from now."""
        now = self._clock()
        self._expiry[key] = now + self.ttl
        self._expiry.move_to_end(key)
        self._purge(now)
        while len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        expiry = self._expiry.get(key)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[key]
            return False
        return True

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._expiry)

    def discard(self, key: Hashable) -> None:
        """Forget a revocation early."""
        self._expiry.pop(key, None)

    def _purge(self, now: float) -> None:
        expiry = self._expiry
        while expiry:
            key, when = next(iter(expiry.items()))
            if when > now:
                break
            del expiry[key]
