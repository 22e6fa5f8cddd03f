"""Publishing this node's closes: marks and message in one round trip, answers counted,
and what the broker did not take kept in the outbox and sent again on recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import suppress
from functools import partial

from . import wire
from .acks import AckBook, AckListener, Acks
from .calls import BoundedCalls
from .health import describe
from .kinds import CloseKind
from .membership import Membership
from .outbox import Entry, Outbox
from .result import ClusterCloseResult, ClusterPublishError
from .transport import Mark, Transport


class Publisher:
    """Sends the closes this node issues to every other node, and counts their answers."""

    def __init__(
        self,
        transport: Transport,
        calls: BoundedCalls,
        membership: Membership,
        node: str,
        outbox: Outbox,
        kinds: dict[str, CloseKind],
        listening: Callable[[], bool],
    ) -> None:
        self.transport = transport
        self.calls = calls
        self.membership = membership
        self.node = node
        self.outbox = outbox
        self.kinds = kinds
        self.listening = listening
        """Whether this node's own subscription delivers its acks (else a close that
        waits for answers listens for them itself: a registry that was never started)."""
        self.acks = AckBook()
        self.failures = 0
        """Closes that could not be published (`stats()["publish_failures"]`)."""
        self.resent = 0
        """Outbox entries sent after a recovery (`stats()["outbox_sent"]`)."""

    async def close(
        self, kind: CloseKind, target: Hashable, wait: float | None
    ) -> ClusterCloseResult:
        """Write the kind's marks and publish (bounded by `redis_timeout`), then close locally.

        The broker first, so that no socket sees its close frame before its id is
        revoked everywhere; if the broker is known to be down, the local close
        goes first so it never waits for a timeout. With `wait`, collects the
        live nodes' answers until they are all in or `wait` seconds have passed.
        Raises `ClusterPublishError` (after the local close) if the broker failed;
        the close is then queued in the outbox.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait or 0.0)
        marks = kind.marks(target)
        json_target = wire.to_json_target(target)
        local = None if self.calls.health.up else await kind.close_here(target)
        request: str | None = None
        acks: Acks | None = None
        error: Exception | None = None
        own: AckListener | None = None
        try:
            try:
                if wait is not None and not self.listening():
                    own = AckListener(self.transport, self.node, self.calls, self.acks)
                    await own.open()
                if wait is not None:
                    request, acks = self.acks.open(len(await self.membership.peers()))
                payload = wire.encode_close(
                    kind.scope, json_target, self.node, request, time.time()
                )
                await self.calls(
                    lambda: self.transport.publish_close(payload, marks), "publishing a close"
                )
            except Exception as exc:
                error = exc
                self.failures += 1
                self.outbox.add(kind.scope, json_target, marks)
            else:
                if kind.replay_safe:
                    self.outbox.add(kind.scope, json_target, marks, sent=True)
            if local is None:
                local = await kind.close_here(target)
            if error is not None:
                raise ClusterPublishError(
                    f"could not publish the close to Redis ({describe(error)}); closed "
                    f"{local} socket(s) on this node; other nodes were not told yet: the "
                    "close is queued and sent when Redis answers again",
                    local,
                    queued=True,
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
            if own is not None:
                await own.close()

    async def queue_marks(self, marks: Sequence[Mark]) -> None:
        """Write `marks` (bounded), or keep them in the outbox if the broker fails."""
        if self.calls.health.up:
            try:
                await self.calls(lambda: self.transport.write_marks(marks), "revoking ids")
                return
            except Exception:
                pass  # recorded by the bounded call
        self.outbox.add(None, None, marks)

    async def flush(self, batch: int = 500) -> int:
        """Send the outbox's unsent entries in order, then send again the kept closes
        whose marks are no longer in the broker (checked `batch` per round trip).

        Each call is bounded; stops at the first failure (raises). Returns how
        many entries were sent.
        """
        sent = 0
        for entry in self.outbox.due():
            await self._send(entry)
            sent += 1
        kept = self.outbox.kept()
        for start in range(0, len(kept), batch):
            for entry in await self._lost(kept[start : start + batch]):
                await self._send(entry)
                sent += 1
        return sent

    async def _lost(self, entries: Sequence[Entry]) -> list[Entry]:
        """The entries of which a live mark is missing from the broker (one round trip).

        Lost with a failover (the old primary had not replicated it), or written
        to an old primary that a node still used and that was then demoted.
        """
        now = time.monotonic()
        marks = [entry.live_marks(now) for entry in entries]
        names = [mark.name for group in marks for mark in group]
        values = await self.calls(partial(self.transport.read_marks, names), "checking sent closes")
        lost, at = [], 0
        for entry, group in zip(entries, marks, strict=True):
            if None in values[at : at + len(group)]:
                lost.append(entry)
            at += len(group)
        return lost

    async def _send(self, entry: Entry) -> None:
        """Send one outbox entry (bounded); mark it sent, kept if its kind is replay-safe."""
        marks = entry.live_marks(time.monotonic())
        if entry.scope is None or entry.target is None:
            await self.calls(partial(self.transport.write_marks, marks), "re-sending marks")
            keep = False
        else:
            payload = wire.encode_close(entry.scope, entry.target, self.node, None, entry.at)
            send = partial(self.transport.publish_close, payload, marks)
            await self.calls(send, "re-sending a close")
            kind = self.kinds.get(entry.scope)
            keep = kind is not None and kind.replay_safe
        self.outbox.sent(entry, keep)
        self.resent += 1
