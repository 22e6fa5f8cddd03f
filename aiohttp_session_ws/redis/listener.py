"""The listener: keeps this node subscribed, checks that the subscription still hears,
and hands what arrives to the registry.

redis-py's pub/sub has no liveness check of its own: a connection that a NAT or a
partition silently dropped blocks a reader forever, and redis-py's
`health_check_interval` sends its ping without waiting for the answer. So the
listener pings through the subscription itself every `ping_interval` seconds,
and a subscription that delivers nothing at all (no answer, no message) within
`timeout` seconds of a ping is taken for deaf: its connection is dropped, so
are the idle connections of the client's pool (a network that silently dropped
one flow dropped the others too), and the subscription is re-made. A deaf node
stops counting as live at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import suppress

from .health import Backoff, Health, logger
from .transport import Delivery, Pong, Subscribed, Subscription, Transport


class DeafSubscriptionError(ConnectionError):
    """The subscription did not answer within the deadline."""


class Listener:
    """Subscribes `node`, dispatches deliveries, checks liveness, re-subscribes with backoff.

    - `on_subscribed(again)` runs on every confirmation of the subscription;
      `again` is false only for the first one of a node that never failed before.
    - `on_delivery(delivery)` runs for every payload, and must not raise.
    - `on_lost()` runs each time the subscription failed or went deaf.
    """

    def __init__(
        self,
        transport: Transport,
        node: str,
        health: Health,
        backoff: Backoff,
        ping_interval: float,
        timeout: float,
        on_subscribed: Callable[[bool], None],
        on_delivery: Callable[[Delivery], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.transport = transport
        self.node = node
        self.health = health
        self.backoff = backoff
        self.ping_interval = ping_interval
        self.timeout = timeout
        self.on_subscribed = on_subscribed
        self.on_delivery = on_delivery
        self.on_lost = on_lost
        self.subscribed = False
        """True while the subscription is confirmed and answers its pings."""
        self.stopping = False
        self.running = False
        self.deaf = 0
        """Subscriptions found deaf (`stats()["liveness_failures"]`)."""
        self._tried = False
        self._lost_at: float | None = None
        self._logged = False
        self._subscription: Subscription | None = None

    async def run(self) -> None:
        """Listen until `stopping`; never raises."""
        self.running = True
        try:
            while not self.stopping:
                subscription = self._subscription = self.transport.subscription(self.node)
                try:
                    await asyncio.wait_for(subscription.open(), self.timeout)
                    await self._serve(subscription)
                except DeafSubscriptionError as exc:
                    self.subscribed = False
                    with suppress(Exception):  # the pool's connections may be dead too
                        await asyncio.wait_for(self.transport.drop_idle(), self.timeout)
                    self._lost(str(exc), log=True)
                except Exception as exc:
                    self.health.failed(exc, "listening on the channel")  # logs the outage
                    self._lost(f"{type(exc).__name__}: {exc}", log=False)
                finally:
                    self._subscription = None
                    with suppress(Exception):
                        await asyncio.wait_for(subscription.close(), self.timeout)
                if not self.stopping:
                    await asyncio.sleep(self.backoff.next())
        finally:
            self.running = False
            self.subscribed = False

    async def _serve(self, subscription: Subscription) -> None:
        """Read events until the subscription fails or goes deaf (then raise)."""
        loop = asyncio.get_running_loop()
        opened = heard = loop.time()
        confirmed = False
        ping_due = 0.0
        waiting: tuple[str, float] | None = None  # (token, sent at) of the unanswered ping
        while True:
            if not confirmed:
                deadline = opened + self.timeout
            elif waiting is not None:
                deadline = max(waiting[1], heard) + self.timeout
            else:
                deadline = ping_due
            event = await subscription.receive(max(0.001, deadline - loop.time()))
            now = loop.time()
            if event is not None:
                heard = now
            if isinstance(event, Delivery):
                self.on_delivery(event)
            elif isinstance(event, Subscribed):  # also after redis-py reconnected by itself
                self._confirmed()
                confirmed, waiting, ping_due = True, None, now + self.ping_interval
            elif isinstance(event, Pong) and waiting is not None and event.token == waiting[0]:
                waiting = None
                self.health.succeeded()
            if not confirmed:
                if now >= opened + self.timeout:
                    raise DeafSubscriptionError(
                        f"subscription not confirmed within {self.timeout}s"
                    )
            elif waiting is not None:
                if now - max(waiting[1], heard) >= self.timeout:
                    self.deaf += 1
                    raise DeafSubscriptionError(f"no answer to a ping within {self.timeout}s")
            elif now >= ping_due:
                token = uuid.uuid4().hex
                await asyncio.wait_for(subscription.ping(token), self.timeout)
                waiting = (token, loop.time())
                ping_due = waiting[1] + self.ping_interval

    def _confirmed(self) -> None:
        again = self._tried
        self._tried = True
        self.on_subscribed(again)
        self.subscribed = True
        self.health.succeeded()
        self.backoff.reset()
        if self._lost_at is not None:
            logger.info(
                "node %s: subscribed again after %.1fs",
                self.node,
                time.monotonic() - self._lost_at,
            )
            self._lost_at = None
        self._logged = False

    def _lost(self, why: str, log: bool) -> None:
        self._tried = True
        self.subscribed = False
        if self._lost_at is None and not self.stopping:
            self._lost_at = time.monotonic()
        if log and not self._logged and not self.stopping:
            self._logged = True
            logger.warning(
                "node %s: not listening to the cluster (%s); this node stops counting as "
                "live, re-subscribes with backoff and reconciles meanwhile",
                self.node,
                why,
            )
        if not self.stopping:
            self.on_lost()

    async def abort(self, timeout: float) -> None:
        """Drop the subscription's connection (within `timeout`), ending a blocked read."""
        subscription = self._subscription
        if subscription is not None:
            with suppress(Exception):
                await asyncio.wait_for(subscription.abort(), timeout)
