"""What a cluster registry needs from its broker: the `Transport` protocol.

The cluster registry and its parts (listener, membership, close kinds,
acknowledgements) use a broker only through this protocol; `RedisTransport`
implements it over Redis pub/sub and keys. Another broker (PostgreSQL
``LISTEN/NOTIFY`` with a table for the marks, say) needs only a new
implementation of these two protocols, not a new registry.

Every method may raise on a broker failure; callers bound each call in time
(`redis_timeout`) and record the broker's health, so implementations need
not. Names passed in ("revoked:<sha256>") are relative: the transport puts
them under its own namespace (the Redis `channel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Mark:
    """A small shared fact that expires: ``revoked:<sha256 of an id>`` for `ttl` seconds."""

    name: str
    ttl: float
    value: bytes = b"1"
    numbered: bool = False
    """If true, `value` is ignored: the mark holds the next number of the shared close
    sequence (`CLOSE_COUNTER`), bumped once per write or publish that carries
    numbered marks, atomically with writing them (see `sequence.py`)."""


CLOSE_COUNTER = "closeseq"
"""The mark holding the shared close sequence's last number (never expires)."""


@dataclass(frozen=True)
class Subscribed:
    """The broker confirmed the subscription (sent again after each re-subscription)."""


@dataclass(frozen=True)
class Delivery:
    """A payload published on the close channel, or on this node's ack channel."""

    channel: str
    """The channel's full name, for logs."""
    for_acks: bool
    """True on this node's ack channel, False on the close channel."""
    data: object


@dataclass(frozen=True)
class Pong:
    """The answer to `Subscription.ping`, carrying its token."""

    token: str


Event = Subscribed | Delivery | Pong


class Subscription(Protocol):
    """One node's subscription to the close channel and its own ack channel."""

    async def open(self) -> None:
        """Send the subscription request (its confirmation arrives as `Subscribed`)."""

    async def receive(self, timeout: float | None) -> Event | None:
        """The next event, or None after `timeout` seconds without one (None: wait)."""

    async def ping(self, token: str) -> None:
        """Send a ping through the subscription itself; the answer arrives as `Pong(token)`."""

    async def close(self) -> None:
        """Unsubscribe and release the connection."""

    async def abort(self) -> None:
        """Drop the connection at once, ending a `receive` blocked in another task."""


class Transport(Protocol):
    """A broker: publish closes, deliver them to every node, keep marks and members."""

    def subscription(self, node: str) -> Subscription:
        """A new, unopened subscription for `node` (the close channel and `node`'s acks)."""

    async def publish_close(self, payload: bytes, marks: Sequence[Mark]) -> None:
        """Write `marks` (as `write_marks` does), then publish `payload` to every node."""

    async def publish_ack(self, node: str, payload: bytes) -> None:
        """Send `payload` to `node`'s ack channel."""

    async def write_marks(self, marks: Sequence[Mark]) -> None:
        """Write `marks`, each expiring after its own `ttl`.

        If some are `numbered`, bump `CLOSE_COUNTER` once, to at least the
        broker's clock in microseconds (so numbers never go back behind those
        handed out before the broker lost its data), and write its new value
        into them, atomically.
        """

    async def swap_mark(self, mark: Mark) -> bytes | None:
        """Write one (unnumbered) mark and return its value before, atomically (None:
        it was missing or expired)."""

    async def read_marks(self, names: Sequence[str]) -> list[bytes | None]:
        """The value of each mark (`CLOSE_COUNTER` included), or None where it is
        missing or expired (one round trip)."""

    async def announce(self, node: str, ttl: float) -> None:
        """Record `node` as live for `ttl` seconds."""

    async def retire(self, node: str) -> None:
        """Forget `node` at once (it is leaving)."""

    async def live_nodes(self) -> set[str]:
        """The nodes announced within their `ttl`."""

    async def drop_idle(self) -> None:
        """Close the idle connections to the broker: after a subscription went silent,
        the network may have dropped them too, and each would cost a timeout to find."""
