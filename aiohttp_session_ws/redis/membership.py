"""Node membership: heartbeats that announce a node while it can hear the cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress

from .calls import BoundedCalls
from .transport import Transport


class Membership:
    """Announces `node` every `interval` seconds (expiring after `ttl`) while `live()`.

    Callers that wait for answers count the announced nodes (`peers`), so a
    node must announce itself only while its subscription delivers closes.
    """

    def __init__(
        self,
        transport: Transport,
        calls: BoundedCalls,
        node: str,
        interval: float,
        ttl: float,
        live: Callable[[], bool],
    ) -> None:
        self.transport = transport
        self.calls = calls
        self.node = node
        self.interval = interval
        self.ttl = ttl
        self.live = live
        self.announced = asyncio.Event()
        """Set once this node has announced itself (startup waits for it)."""
        self.stopping = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Announce at once (e.g. right after a re-subscription)."""
        self._wake.set()

    async def run(self) -> None:
        """The heartbeat loop, until `stopping`; never raises."""
        while not self.stopping:
            self._wake.clear()
            if self.live():
                try:
                    await self.calls(
                        lambda: self.transport.announce(self.node, self.ttl),
                        "sending the heartbeat",
                    )
                except Exception:
                    pass  # recorded by the bounded call
                else:
                    self.announced.set()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def peers(self) -> set[str]:
        """The other live nodes (bounded; raises if the broker does not answer)."""
        nodes = await self.calls(self.transport.live_nodes, "counting live nodes")
        nodes.discard(self.node)
        return nodes

    async def withdraw(self) -> None:
        """Stop being expected until the next announcement (bounded; raises on failure)."""
        await self.calls(lambda: self.transport.retire(self.node), "withdrawing this node")

    async def leave(self) -> None:
        """Stop being expected by the others (bounded; raises on failure)."""
        self.announced.clear()
        await self.calls(lambda: self.transport.retire(self.node), "leaving the cluster")
