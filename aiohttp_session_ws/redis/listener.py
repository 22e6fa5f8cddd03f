"""The listener: keeps this node subscribed and hands what arrives to the registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress

from .health import Backoff, Health
from .transport import Delivery, Subscribed, Subscription, Transport


class Listener:
    """Subscribes `node`, dispatches deliveries, and re-subscribes with backoff.

    `on_subscribed()` runs on every confirmation of the subscription (the
    first and each one after a reconnect, redis-py's own included);
    `on_delivery(delivery)` runs for every payload, and must not raise.
    """

    def __init__(
        self,
        transport: Transport,
        node: str,
        health: Health,
        backoff: Backoff,
        on_subscribed: Callable[[], None],
        on_delivery: Callable[[Delivery], None],
    ) -> None:
        self.transport = transport
        self.node = node
        self.health = health
        self.backoff = backoff
        self.on_subscribed = on_subscribed
        self.on_delivery = on_delivery
        self.subscribed = False
        self.stopping = False
        self._subscription: Subscription | None = None

    async def run(self) -> None:
        """Listen until `stopping`; never raises."""
        while not self.stopping:
            subscription = self._subscription = self.transport.subscription(self.node)
            try:
                await subscription.open()
                while True:
                    event = await subscription.receive(None)
                    if isinstance(event, Subscribed):
                        self.on_subscribed()
                        self.subscribed = True
                        self.health.succeeded()
                        self.backoff.reset()
                    elif isinstance(event, Delivery):
                        self.on_delivery(event)
            except Exception as exc:
                self.subscribed = False
                self.health.failed(exc, "listening on the channel")
            finally:
                self._subscription = None
                with suppress(Exception):
                    await subscription.close()
            if not self.stopping:
                await asyncio.sleep(self.backoff.next())

    async def abort(self, timeout: float) -> None:
        """Drop the subscription's connection (within `timeout`), ending a blocked read."""
        subscription = self._subscription
        if subscription is not None:
            with suppress(Exception):
                await asyncio.wait_for(subscription.abort(), timeout)
