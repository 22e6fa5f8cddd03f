"""The outbox: closes and revocations this node could not write or publish, kept in order.

When the broker fails, the issuing node keeps what it could not send (a close
with the marks it writes, or marks alone) and sends it again, in issue order, as
soon as the broker answers. Closes whose kind can be applied again at any time
(`CloseKind.replay_safe`) also stay for `replay_window` seconds after they were
sent, and are sent again after every recovery too: a failover can lose writes
the old primary acknowledged but had not yet replicated.
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
    """When first sent (monotonic), for entries kept for replays."""

    def live_marks(self, now: float) -> list[Mark]:
        """The marks with what is left of their TTL."""
        return [replace(mark, ttl=end - now) for mark, end in self.marks if end > now]

    def expired(self, now: float) -> bool:
        return bool(self.marks) and all(expiry <= now for _, expiry in self.marks)


class Outbox:
    """At most `max_size` entries, oldest first; the oldest is dropped (and counted) when full."""

    def __init__(
        self,
        max_size: int,
        replay_window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_size = check_count("outbox_size", max_size)
        self.replay_window = replay_window
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
        """Queue a close (or marks alone, with `scope` None); `sent` keeps it for replays."""
        now = self._clock()
        entry = Entry(
            scope,
            target,
            tuple((m, now + m.ttl) for m in marks),
            time.time(),
            now if sent else None,
        )
        entries = self._entries
        if sent:  # the broker answers now: forget the replays older than the window
            while entries and entries[0].sent_at is not None:
                if entries[0].sent_at >= now - self.replay_window:
                    break
                entries.popleft()
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

    def due(self, healthy_at: float) -> list[Entry]:
        """What to send now, in order: every unsent entry, and the sent ones kept for
        replays that were sent within `replay_window` of `healthy_at` (the last time
        the broker was known to answer), after dropping expired and older entries."""
        now = self._clock()
        horizon = healthy_at - self.replay_window
        self._entries = deque(
            entry
            for entry in self._entries
            if not entry.expired(now) and (entry.sent_at is None or entry.sent_at >= horizon)
        )
        return list(self._entries)

    def sent(self, entry: Entry, keep: bool) -> None:
        """`entry` reached the broker; `keep` it for replays within the window, or drop it."""
        if entry.sent_at is None:
            entry.sent_at = self._clock()
        if not keep:
            with suppress(ValueError):  # dropped meanwhile
                self._entries.remove(entry)
