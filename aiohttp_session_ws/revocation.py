"""Bounded, time-limited memory of revoked websocket ids, in separate budgets."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

from .options import check_count, check_seconds

OTHER: Final = 0
"""Budget of ids that had no socket here when revoked (e.g. an anonymous logout)."""
SOCKETS: Final = 1
"""Budget of ids that had a socket, or a handshake in flight, here when revoked."""
SIGNED_IN: Final = 2
"""Budget of ids whose sockets carried extra keys (a signed-in user's, with the
security layer), and of per-key revocations."""
BUDGETS: Final = 3


def _no_sockets(key: Hashable) -> int:
    return OTHER


class RevokedIds:
    """Remembers revoked ids for `ttl` seconds, holding at most `max_size` per budget.

    `budget_of(key)` says, when `key` is revoked, which budget it goes to (`OTHER`,
    `SOCKETS` or `SIGNED_IN`). Each budget forgets its own oldest entry when full,
    so a flood of revocations in one (anonymous logouts, say) never evicts those
    of another (sessions that had sockets). A key revoked again moves to the
    higher of its two budgets. Entries expire in insertion order within a budget,
    so expiry and eviction are both O(1) per entry.
    """

    def __init__(
        self,
        ttl: float = 600.0,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        budget_of: Callable[[Hashable], int] = _no_sockets,
    ) -> None:
        self.ttl = check_seconds("revocation_ttl", ttl)
        self.max_size = check_count("revocation_max_size", max_size)
        self._clock = clock
        self._budget_of = budget_of
        self._budgets: tuple[OrderedDict[Hashable, float], ...] = tuple(
            OrderedDict() for _ in range(BUDGETS)
        )

    def add(self, key: Hashable) -> None:
        """Revoke `key` (again) for `ttl` seconds from now."""
        now = self._clock()
        budget = max(OTHER, min(self._budget_of(key), BUDGETS - 1))
        # A key lives in one budget at a time: the higher of the old and the new one.
        held = next((i for i, entries in enumerate(self._budgets) if key in entries), budget)
        if held > budget:
            budget = held
        elif held < budget:
            del self._budgets[held][key]
        entries = self._budgets[budget]
        entries[key] = now + self.ttl
        entries.move_to_end(key)
        _purge(entries, now)
        while len(entries) > self.max_size:
            entries.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        for entries in self._budgets:
            expiry = entries.get(key)
            if expiry is None:
                continue
            if expiry <= self._clock():
                del entries[key]
                return False
            return True
        return False

    def __len__(self) -> int:
        return sum(self.sizes())

    def sizes(self) -> tuple[int, ...]:
        """How many revocations each budget holds (`OTHER`, `SOCKETS`, `SIGNED_IN`)."""
        now = self._clock()
        for entries in self._budgets:
            _purge(entries, now)
        return tuple(len(entries) for entries in self._budgets)

    def discard(self, key: Hashable) -> None:
        """Forget a revocation early."""
        for entries in self._budgets:
            entries.pop(key, None)


def _purge(entries: OrderedDict[Hashable, float], now: float) -> None:
    while entries:
        key, when = next(iter(entries.items()))
        if when > now:
            break
        del entries[key]
