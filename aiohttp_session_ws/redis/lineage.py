"""Session lineage shared by every node: marks ``successor:<sha256 of an id>`` in the broker."""

from __future__ import annotations

import json
from collections.abc import Hashable

from . import wire
from .calls import BoundedCalls
from .transport import Mark, Transport


class SharedLineage:
    """Writes and reads the latest successor of each retired id; each call is bounded
    and may raise."""

    def __init__(self, transport: Transport, calls: BoundedCalls, ttl: float) -> None:
        self.transport = transport
        self.calls = calls
        self.ttl = ttl
        """Seconds a successor is remembered: the registry's `revocation_ttl`."""

    @staticmethod
    def name(retired: wire.JSONTarget) -> str:
        """The mark's name: key names never show ids."""
        return f"successor:{wire.digest(retired)}"

    def mark(self, retired: wire.JSONTarget, successor: wire.JSONTarget) -> Mark:
        """The mark recording `successor` as the session that replaced `retired`."""
        return Mark(self.name(retired), self.ttl, wire.canonical(successor).encode())

    async def get(self, retired: wire.JSONTarget) -> Hashable | None:
        """The successor recorded for `retired` in the broker, or None."""
        names = [self.name(retired)]
        found = await self.calls(lambda: self.transport.read_marks(names), "reading a lineage")
        value = found[0]
        if value is None:
            return None
        try:
            return wire.from_json_target(json.loads(value))
        except (ValueError, TypeError) as exc:
            raise wire.MessageError("unreadable lineage mark") from exc
