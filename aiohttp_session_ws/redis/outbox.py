"""The outbox: closes and revocations this node could not write or publish, kept in order.

When the broker fails, the issuing node keeps what it could not send (a close
with the marks it writes, or marks alone) and sends it again, in issue order, as
soon as the broker answers. Closes whose kind can be applied again at any time
(`CloseKind.replay_safe`) also stay after they were sent, until their marks
expire: after every recovery the node checks that their marks are still in the
broker and sends again those whose marks are gone. A failover loses the writes
the old primary acknowledged but had not yet replicated, and a node may go on
writing to an old primary for seconds after the failover (until the sentinels
demote it, which replaces its data): its closes reached no other node then.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace

from ..options import check_count
from . import wire
from .transport import Mark


@dataclass
class Entry:
    """One queued close (`scope` set) or revocation (`scope` None)."""

    scope: wire.Scope | None
    target: wire.JSONTarget | None
    marks: tuple[tuple[Mark, float], ...]
    """Each mark with its expiry on this node's monotonic clock."""
    at: float
    """Issued at (wall clock, seconds since the epoch), carried by the message."""
    sent_at: float | None = None
    """When first sent (monotonic), for entries kept to be checked after recoveries."""

    def live_marks(self, now: float) -> list[Mark]:
        """The marks with what is left of their TTL."""
        return [replace(mark, ttl=end - now) for mark, end in self.marks if end > now]

    def expired(self, now: float) -> bool:
        return bool(self.marks) and all(expiry <= now for _, expiry in self.marks)


class Outbox:
    """At most `max_size` entries, oldest first; the oldest is dropped (and counted) when full."""

    def __init__(self, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = check_count("outbox_size", max_size)
        self.dropped = 0
        """Unsent entries dropped because the outbox was full."""
        self._entries: deque[Entry] = deque()
        self._clock = clock

    def add(
        self,
        scope: wire.Scope | None,
        target: wire.JSONTarget | None,
        marks: Sequence[Mark],
        *,
        sent: bool = False,
    ) -> Entry:
        """Queue a close (or marks alone, with `scope` None); `sent` keeps a sent close
        (with marks) to be checked after recoveries."""
        now = self._clock()
        entry = Entry(
            scope,
            target,
            tuple((m, now + m.ttl) for m in marks),
            time.time(),
            now if sent else None,
        )
        if sent and not marks:
            return entry  # nothing in the broker to check it by: not kept
        entries = self._entries
        while entries and entries[0].sent_at is not None and entries[0].expired(now):
            entries.popleft()  # kept closes whose marks expired: nothing left to check
        entries.append(entry)
        while len(entries) > self.max_size:
            if entries.popleft().sent_at is None:
                self.dropped += 1
        return entry

    @property
    def unsent(self) -> int:
        """Entries not sent yet (`stats()["outbox"]`)."""
        return sum(1 for entry in self._entries if entry.sent_at is None)

    def __len__(self) -> int:
        return len(self._entries)

    def due(self) -> list[Entry]:
        """The unsent entries, in issue order (after dropping expired entries)."""
        self._drop_expired()
        return [entry for entry in self._entries if entry.sent_at is None]

    def kept(self) -> list[Entry]:
        """The sent closes kept to be checked, with marks still live."""
        self._drop_expired()
        return [entry for entry in self._entries if entry.sent_at is not None]

    def _drop_expired(self) -> None:
        now = self._clock()
        self._entries = deque(entry for entry in self._entries if not entry.expired(now))

    def sent(self, entry: Entry, keep: bool) -> None:
        """`entry` reached the broker; `keep` it to be checked after recoveries (only an
        entry with marks can be checked), or drop it."""
        if entry.sent_at is None:
            entry.sent_at = self._clock()
        if not keep or not entry.marks:
            with suppress(ValueError):  # dropped meanwhile
                self._entries.remove(entry)
