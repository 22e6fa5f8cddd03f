"""Session lineage shared by every node: marks ``successor:<sha256 of an id>`` in the broker."""

from __future__ import annotations

import json

from ..lineage import Ended, Link, Record
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

    def mark(self, retired: wire.JSONTarget, record: Record) -> Mark:
        """The mark storing `record` for `retired` (for the outbox when the broker is down).

        Raises `TypeError` for a successor id that cannot be sent as JSON.
        """
        return Mark(self.name(retired), self.ttl, encode(record))

    async def swap(self, retired: wire.JSONTarget, record: Record) -> Record | None:
        """Store `record` for `retired`; return what was stored before (or None).

        Raises `TypeError` for a successor id that cannot be sent as JSON, and
        `wire.MessageError` for a record this library did not write.
        """
        mark = self.mark(retired, record)
        before = await self.calls(lambda: self.transport.swap_mark(mark), "recording a lineage")
        return None if before is None else decode(before)


def encode(record: Record) -> bytes:
    """``{"id": <the successor id as JSON>, "at": t}`` or ``{"ended": t, "by": <id or null>}``."""
    if isinstance(record, Ended):
        by = None if record.by is None else wire.to_json_target(record.by)
        return json.dumps({"ended": record.at, "by": by}, separators=(",", ":")).encode()
    return json.dumps(
        {"id": wire.to_json_target(record.successor), "at": record.at}, separators=(",", ":")
    ).encode()


def decode(value: bytes) -> Record:
    """The inverse of `encode`; raises `wire.MessageError` for anything else."""
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise wire.MessageError("unreadable lineage record") from exc
    if not isinstance(data, dict):
        raise wire.MessageError("unreadable lineage record")
    if "ended" in data:
        by = data.get("by")
        return Ended(_time(data["ended"]), None if by is None else wire.from_json_target(by))
    if "id" not in data:
        raise wire.MessageError("unreadable lineage record")
    return Link(wire.from_json_target(data["id"]), _time(data.get("at")))


def _time(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise wire.MessageError("unreadable lineage record")
    return float(value)
