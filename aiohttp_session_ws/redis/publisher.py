"""Publishing this node's closes: marks and message in one round trip, answers counted."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from contextlib import suppress

from . import wire
from .acks import AckBook, Acks
from .calls import BoundedCalls
from .health import describe
from .kinds import CloseKind
from .membership import Membership
from .result import ClusterCloseResult, ClusterPublishError
from .transport import Transport


class Publisher:
    """Sends the closes this node issues to every other node, and counts their answers."""

    def __init__(
        self, transport: Transport, calls: BoundedCalls, membership: Membership, node: str
    ) -> None:
        self.transport = transport
        self.calls = calls
        self.membership = membership
        self.node = node
        self.acks = AckBook()
        self.failures = 0
        """Closes that could not be published (`stats()["publish_failures"]`)."""

    async def close(
        self, kind: CloseKind, target: Hashable, wait: float | None
    ) -> ClusterCloseResult:
        """Write the kind's marks and publish (bounded by `redis_timeout`), then close locally.

        The broker first, so that no socket sees its close frame before its id is
        revoked everywhere; if the broker is known to be down, the local close
        goes first so it never waits for a timeout. With `wait`, collects the
        live nodes' answers until they are all in or `wait` seconds have passed.
        Raises `ClusterPublishError` (after the local close) if the broker failed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait or 0.0)
        marks = kind.marks(target)
        payload_target = wire.to_json_target(target)
        local = None if self.calls.health.up else await kind.close_here(target)
        request: str | None = None
        acks: Acks | None = None
        error: Exception | None = None
        try:
            try:
                if wait is not None:
                    request, acks = self.acks.open(len(await self.membership.peers()))
                payload = wire.encode_close(kind.scope, payload_target, self.node, request)
                await self.calls(
                    lambda: self.transport.publish_close(payload, marks), "publishing a close"
                )
            except Exception as exc:
                error = exc
                self.failures += 1
            if local is None:
                local = await kind.close_here(target)
            if error is not None:
                raise ClusterPublishError(
                    f"could not publish the close to Redis ({describe(error)}); "
                    f"closed {local} socket(s) on this node, other nodes were not told",
                    local,
                ) from error
            if acks is None:
                return ClusterCloseResult(local, local, 1, 1)
            remaining = deadline - loop.time()
            if remaining > 0:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(acks.done.wait(), remaining)
            return ClusterCloseResult(
                closed=local + sum(acks.closed.values()),
                local=local,
                nodes_answered=1 + len(acks.closed),
                nodes_expected=1 + acks.expected,
            )
        finally:
            if request is not None:
                self.acks.close(request)
