"""Which session replaced a retired one in its browser: a bounded, expiring memory.

A login or logout replaces the browser's session (websocket id X) by a new one
(Y): X -> Y is remembered here. A later response that replaces X again (a
login or logout sent with X's cookie before or while Y was issued: a stale tab,
two logins from one cookie) takes the browser's jar from Y, so Y and whatever
replaced Y must end too; `SessionWSRegistry.supersede` walks this memory to
find them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

from .options import check_count, check_seconds

MAX_LINEAGE: int = 64
"""How many successive sessions `supersede` follows from one retired id at most."""

RACE_WINDOW: float = 10.0
"""Seconds after a session was ended by `supersede` during which a login or logout
sent with its cookie ends its own new session too (the two responses race to the
browser; the jar may keep either)."""


class Ended(NamedTuple):
    """Recorded in place of a successor: the session was ended by `supersede` at `at`
    (seconds since the epoch), so whatever replaces it afterwards may race that end."""

    at: float


Successor = Hashable | Ended
"""What the lineage records for a retired id: its successor's id, or `Ended`."""


class SessionLineage:
    """Remembers the latest successor of each retired id for `ttl` seconds, at most
    `max_size` of them (the oldest is forgotten first)."""

    def __init__(
        self,
        ttl: float = 600.0,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = check_seconds("revocation_ttl", ttl)
        self.max_size = check_count("revocation_max_size", max_size)
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Successor]] = OrderedDict()

    def swap(self, retired: Hashable, successor: Successor) -> Successor | None:
        """Record `successor` for `retired`; return what was recorded before (or None)."""
        previous = self.get(retired)
        now = self._clock()
        self._entries[retired] = (now + self.ttl, successor)
        self._entries.move_to_end(retired)
        self._purge(now)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        return previous

    def get(self, retired: Hashable) -> Successor | None:
        """What is recorded for `retired`: the latest session that replaced it, `Ended`,
        or None (nothing, or expired)."""
        entry = self._entries.get(retired)
        if entry is None:
            return None
        expiry, successor = entry
        if expiry <= self._clock():
            del self._entries[retired]
            return None
        return successor

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._entries)

    def _purge(self, now: float) -> None:
        entries = self._entries
        while entries:
            expiry, _ = next(iter(entries.values()))
            if expiry > now:
                break
            entries.popitem(last=False)


class LineageLookupError(Exception):
    """The session that replaced a retired one could not be looked up (a cluster
    registry's broker did not answer). `session_ws_middleware` then refuses a
    login or logout sent with a cookie already retired (503, counted in
    `stats()["refused"]["lineage_unknown"]`) and lets others through."""
