"""Revoked ids shared by every node: marks ``revoked:<sha256 of the id>`` in the broker."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import partial

from . import wire
from .calls import BoundedCalls
from .transport import Mark, Transport


def target_or_none(value: Hashable) -> wire.JSONTarget | None:
    """The JSON form of an id or key, or None for one that cannot be sent."""
    try:
        return wire.to_json_target(value)
    except TypeError:
        return None


class SharedRevocations:
    """Writes and reads revocations in the broker; each call is bounded and may raise."""

    def __init__(self, transport: Transport, calls: BoundedCalls, ttl: float) -> None:
        self.transport = transport
        self.calls = calls
        self.ttl = ttl
        """Seconds a revocation lasts: the registry's `revocation_ttl`."""

    @staticmethod
    def name(target: wire.JSONTarget) -> str:
        """The mark's name: key names never show ids."""
        return f"revoked:{wire.digest(target)}"

    def marks(self, targets: Sequence[wire.JSONTarget]) -> list[Mark]:
        """The marks that revoke `targets` for `ttl` seconds from when they are written."""
        return [Mark(self.name(target), self.ttl) for target in targets]

    async def add(self, targets: Sequence[wire.JSONTarget], doing: str = "revoking ids") -> None:
        """Revoke `targets` in the broker."""
        marks = self.marks(targets)
        await self.calls(lambda: self.transport.write_marks(marks), doing)

    async def contains(self, target: wire.JSONTarget) -> bool:
        """Whether `target` is revoked in the broker."""
        names = [self.name(target)]
        found = await self.calls(lambda: self.transport.read_marks(names), "checking a revocation")
        return found[0] is not None

    async def which(self, targets: Sequence[wire.JSONTarget], batch: int) -> list[bool]:
        """Whether each target is revoked, `batch` targets per round trip."""
        found: list[bool] = []
        for start in range(0, len(targets), batch):
            names = [self.name(t) for t in targets[start : start + batch]]
            values = await self.calls(
                partial(self.transport.read_marks, names), "reconciling revocations"
            )
            found += [value is not None for value in values]
        return found
