"""The close sequence: was one of a socket's keys closed after its handshake began?

A handshake computes a socket's index keys (an identity lookup may take a
while) before it registers the socket. A per-key close that runs in between
finds nothing to close, so the registry keeps a *close sequence*: a counter
bumped by every key close, and per key the value of its last close. The
handshake takes the counter (its *mark*) before computing its keys; at
registration the socket is refused if one of its keys was closed after the mark.
No clock is involved, so marks compare across nodes that share the counter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from .options import check_count, check_seconds


@dataclass(frozen=True)
class CloseMark:
    """Where the close sequence stood when a handshake began computing its keys.

    `session_ws` takes one with `SessionWSRegistry.close_mark()` and passes it
    to `index_keys` and `refuses`; the registry keeps it with the socket.
    """

    sequence: int


class CloseSequence:
    """A counter bumped by every key close and, per key, the value of its last close.

    Entries expire after `ttl` seconds and at most `max_size` are kept (the
    oldest go first). Forgetting an entry raises a *floor*: a mark below it
    counts as closed for every key, so a handshake older than a forgotten
    close is refused rather than missed (fail closed).
    """

    def __init__(
        self,
        ttl: float = 600.0,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The registry's revocation_ttl and revocation_max_size: checked as those.
        self.ttl = check_seconds("revocation_ttl", ttl)
        self.max_size = check_count("revocation_max_size", max_size)
        self._clock = clock
        self._sequence = 0
        self._floor = 0
        self._last: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()

    @property
    def current(self) -> int:
        """The counter now: a handshake takes it before computing its keys."""
        return self._sequence

    def close(self, key: Hashable) -> int:
        """Record a close of `key` as the next sequence value, and return that value."""
        self._sequence += 1
        self.record(key, self._sequence)
        return self._sequence

    def record(self, key: Hashable, sequence: int) -> None:
        """Record a close of `key` that another counter (e.g. a shared one) numbered."""
        now = self._clock()
        previous = self._last.pop(key, None)
        if previous is not None:
            sequence = max(sequence, previous[0])
        self._last[key] = (sequence, now + self.ttl)
        self.advance(sequence)
        self._purge(now)
        while len(self._last) > self.max_size:
            self._forget()

    def advance(self, sequence: int) -> None:
        """Move the sequence up to `sequence` (never down)."""
        self._sequence = max(self._sequence, sequence)

    def last_close(self, key: Hashable) -> int:
        """The sequence of the last remembered close of `key` (the floor if none)."""
        self._purge(self._clock())
        entry = self._last.get(key)
        return self._floor if entry is None else max(entry[0], self._floor)

    def closed_since(self, keys: Iterable[Hashable], sequence: int) -> bool:
        """True if one of `keys` was closed after the counter stood at `sequence`."""
        return any(self.last_close(key) > sequence for key in keys)

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._last)

    def _forget(self) -> None:
        _, (sequence, _) = self._last.popitem(last=False)
        self._floor = max(self._floor, sequence)

    def _purge(self, now: float) -> None:
        last = self._last
        while last and next(iter(last.values()))[1] <= now:
            self._forget()
