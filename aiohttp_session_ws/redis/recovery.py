"""Recovery: after the broker answers again, send what this node queued, then catch up.

Runs on every recovery, whichever part noticed it (a re-subscription, a broker
call that succeeds after failures, a subscription found deaf), so a stall that
no subscription noticed is reconciled too. Requests made while a run is going
on are folded into one more run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .health import Backoff, describe, logger


class Recovery:
    """Runs `flush()` (this node's outbox) then `reconcile()` (what it missed), in the
    background; a failed run is retried with `backoff` while `active()`."""

    def __init__(
        self,
        flush: Callable[[], Awaitable[object]],
        reconcile: Callable[[], Awaitable[object]],
        backoff: Backoff,
        spawn: Callable[[Awaitable[None]], object],
        active: Callable[[], bool],
    ) -> None:
        self.flush = flush
        self.reconcile = reconcile
        self.backoff = backoff
        self.spawn = spawn
        self.active = active
        self.runs = 0
        """Completed runs (`stats()["recoveries"]`)."""
        self._again = False
        self._running = False

    def request(self) -> None:
        """Run (again) soon."""
        self._again = True
        if not self._running:
            self._running = True
            self.spawn(self._run())

    async def _run(self) -> None:
        try:
            while self._again:
                self._again = False
                try:
                    await self.flush()
                    await self.reconcile()
                except Exception as exc:  # a broker failure, recorded by the bounded call
                    logger.debug("recovery run failed (%s)", describe(exc))
                    if not self.active():
                        return  # not started: the next broker call that succeeds retries
                    self._again = True
                    await asyncio.sleep(self.backoff.next())
                else:
                    self.runs += 1
                    self.backoff.reset()
        finally:
            self._running = False
