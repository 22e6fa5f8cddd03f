"""The close sequence shared by a cluster: per-key closes numbered by the broker.

Every node numbers the key closes it applies in its own `CloseSequence`, so a
handshake in flight on that node when a close reaches it is refused. A node
that does not hear a close (a dead subscription, an outage) cannot number it;
so the issuer also has the broker number it, atomically with publishing it:
``keyclose:<sha256 of the key>`` holds the number of the key's last close
(expiring after `revocation_ttl`), ``closeseq`` the counter. Numbers never go
back behind the broker's clock in microseconds, so a broker that lost its data
keeps numbering after everything it handed out before.

A socket's mark (`ClusterCloseMark`) also records the counter as this node had
last read it when the handshake began (`shared`). A key whose last close in the
broker is numbered above that was closed after the handshake began, or while
this node could not hear: the socket is refused at registration, and closed when
the node reconciles after an outage.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import partial

from ..close_sequence import CloseMark
from . import wire
from .calls import BoundedCalls
from .revocations import target_or_none
from .transport import CLOSE_COUNTER, Mark, Transport


@dataclass(frozen=True)
class ClusterCloseMark(CloseMark):
    """A `CloseMark` plus the cluster's close counter as this node last read it."""

    shared: int = 0


def shared_part(mark: CloseMark | None) -> int:
    """The cluster counter in `mark` (0 for a mark made without one: older than any close)."""
    return mark.shared if isinstance(mark, ClusterCloseMark) else 0


def number(value: bytes | None) -> int:
    """A numbered mark's value as an int (0 when missing or not a number)."""
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


class SharedCloseSequence:
    """Names, writes and reads of the broker's close sequence; calls are bounded and may raise."""

    def __init__(self, transport: Transport, calls: BoundedCalls, ttl: float) -> None:
        self.transport = transport
        self.calls = calls
        self.ttl = ttl
        """Seconds a key's last close is kept: the registry's `revocation_ttl`."""
        self.seen = 0
        """The highest counter value this node has read (never goes down)."""

    @staticmethod
    def name(key: wire.JSONTarget) -> str:
        """The mark holding the number of `key`'s last close (names never show keys)."""
        return f"keyclose:{wire.digest(key)}"

    def marks(self, key: Hashable) -> list[Mark]:
        """The numbered mark a close of `key` writes (none for a key that cannot travel)."""
        target = target_or_none(key)
        return [] if target is None else [Mark(self.name(target), self.ttl, numbered=True)]

    def observe(self, counter: bytes | None) -> None:
        """Move `seen` up to a counter value read from the broker."""
        self.seen = max(self.seen, number(counter))

    def names(self, keys: Sequence[Hashable]) -> list[str]:
        """The marks to read for `keys` (keys that cannot travel were never closed remotely)."""
        return [self.name(t) for t in map(target_or_none, keys) if t is not None]

    async def refresh(self) -> None:
        """Read the counter (so handshakes starting now are marked after every close so far)."""
        found = await self.calls(
            lambda: self.transport.read_marks([CLOSE_COUNTER]), "reading the close sequence"
        )
        self.observe(found[0])

    async def last_closes(self, keys: Sequence[Hashable], batch: int) -> dict[Hashable, int]:
        """The number of each key's last close in the broker (0: none), `batch` per round trip."""
        travelling = [(key, t) for key in keys if (t := target_or_none(key)) is not None]
        found: dict[Hashable, int] = {}
        for start in range(0, len(travelling), batch):
            chunk = travelling[start : start + batch]
            names = [self.name(t) for _, t in chunk] + [CLOSE_COUNTER]
            values = await self.calls(
                partial(self.transport.read_marks, names), "reconciling key closes"
            )
            self.observe(values[-1])
            found.update((key, number(v)) for (key, _), v in zip(chunk, values, strict=False))
        return found
