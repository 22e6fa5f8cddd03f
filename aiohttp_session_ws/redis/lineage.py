"""Session lineage shared by every node: marks ``successor:<sha256 of an id>`` in the broker."""

from __future__ import annotations

import json

from ..lineage import Ended, Successor
from . import wire
from .calls import BoundedCalls
from .transport import Mark, Transport


class SharedLineage:
    """Swaps the recorded successor of a retired id in the broker, atomically; each
    call is bounded and may raise."""

    def __init__(self, transport: Transport, calls: BoundedCalls, ttl: float) -> None:
        self.transport = transport
        self.calls = calls
        self.ttl = ttl
        """Seconds a record lasts: the registry's `revocation_ttl`."""

    @staticmethod
    def name(retired: wire.JSONTarget) -> str:
        """The mark's name: key names never show ids."""
        return f"successor:{wire.digest(retired)}"

    async def swap(self, retired: wire.JSONTarget, successor: Successor) -> Successor | None:
        """Record `successor` for `retired`; return what was recorded before (or None).

        Raises `TypeError` for a successor id that cannot be sent as JSON, and
        `wire.MessageError` for a record this library did not write.
        """
        mark = Mark(self.name(retired), self.ttl, encode(successor))
        before = await self.calls(lambda: self.transport.swap_mark(mark), "recording a lineage")
        return None if before is None else decode(before)


def encode(successor: Successor) -> bytes:
    """A successor id as canonical JSON; `Ended` as ``{"ended": <seconds since the epoch>}``."""
    if isinstance(successor, Ended):
        return json.dumps({"ended": successor.at}).encode()
    return wire.canonical(wire.to_json_target(successor)).encode()


def decode(value: bytes) -> Successor:
    """The inverse of `encode`."""
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise wire.MessageError("unreadable lineage record") from exc
    if isinstance(data, dict):
        at = data.get("ended")
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise wire.MessageError("unreadable lineage record")
        return Ended(float(at))
    return wire.from_json_target(data)
