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


class Link(NamedTuple):
    """The session of `successor` replaced the retired one; recorded at `at` (seconds
    since the epoch, `time.time()` of the node that recorded it)."""

    successor: Hashable
    at: float


class Ended(NamedTuple):
    """The session was ended by `supersede` at `at` (seconds since the epoch), for the
    session `by` (None: one without an id) that the browser's jar took instead; or,
    for a retired id, it was replaced by a session without an id."""

    at: float
    by: Hashable | None = None


Record = Link | Ended
"""What the lineage holds for a retired id."""


class SessionLineage:
    """Remembers, for `ttl` seconds, what replaced each retired id (at most `max_size`
    of them; the oldest is forgotten first)."""

    def __init__(
        self,
        ttl: float = 600.0,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = check_seconds("revocation_ttl", ttl)
        self.max_size = check_count("revocation_max_size", max_size)
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Record]] = OrderedDict()

    def swap(self, retired: Hashable, record: Record) -> Record | None:
        """Store `record` for `retired`; return what was stored before (or None)."""
        previous = self.get(retired)
        now = self._clock()
        self._entries[retired] = (now + self.ttl, record)
        self._entries.move_to_end(retired)
        self._purge(now)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        return previous

    def get(self, retired: Hashable) -> Record | None:
        """What is stored for `retired`: a `Link` to the latest session that replaced
        it, `Ended`, or None (nothing, or expired)."""
        entry = self._entries.get(retired)
        if entry is None:
            return None
        expiry, record = entry
        if expiry <= self._clock():
            del self._entries[retired]
            return None
        return record

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
