"""Acknowledgements: the answers other nodes send to a close that waits for them."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress

from . import wire
from .calls import BoundedCalls
from .transport import Delivery, Subscribed, Transport


class Acks:
    """Answers collected for one close request."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.closed: dict[str, int] = {}
        self.done = asyncio.Event()
        if expected <= 0:
            self.done.set()

    def add(self, node: str, closed: int) -> None:
        self.closed.setdefault(node, closed)  # a node counts once
        if len(self.closed) >= self.expected:
            self.done.set()


class AckBook:
    """The close requests of this node still waiting for answers, by request id."""

    def __init__(self) -> None:
        self._open: dict[str, Acks] = {}

    def open(self, expected: int) -> tuple[str, Acks]:
        """A new request id and the `Acks` that will collect its `expected` answers."""
        request = uuid.uuid4().hex
        acks = self._open[request] = Acks(expected)
        return request, acks

    def close(self, request: str) -> None:
        """Stop collecting for `request`; later answers are ignored."""
        self._open.pop(request, None)

    def deliver(self, ack: wire.AckMessage) -> None:
        """Count an answer; one for a request no longer open (late) is dropped."""
        acks = self._open.get(ack.request)
        if acks is not None:
            acks.add(ack.node, ack.closed)

    def release_all(self) -> None:
        """Wake every waiter at once (the registry is stopping)."""
        for acks in self._open.values():
            acks.done.set()


class AckListener:
    """A subscription of its own for the answers to one close, for a registry that
    was never started (a worker process): opened before publishing, closed after."""

    def __init__(self, transport: Transport, node: str, calls: BoundedCalls, book: AckBook) -> None:
        self.subscription = transport.subscription(node)
        self.calls = calls
        self.book = book
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Subscribe and wait for the confirmation (bounded; raises on failure)."""
        await self.calls(self._subscribe, "listening for answers")
        self._reader = asyncio.ensure_future(self._read())

    async def _subscribe(self) -> None:
        await self.subscription.open()
        while not isinstance(await self.subscription.receive(None), Subscribed):
            pass

    async def _read(self) -> None:
        while True:
            event = await self.subscription.receive(None)
            if isinstance(event, Delivery) and event.for_acks:
                with suppress(wire.MessageError):
                    message = wire.decode(event.data)
                    if isinstance(message, wire.AckMessage):
                        self.book.deliver(message)

    async def close(self) -> None:
        """Stop reading and unsubscribe (bounded)."""
        if self._reader is not None:
            self._reader.cancel()
            with suppress(BaseException):
                await self._reader
        with suppress(Exception):
            await asyncio.wait_for(self.subscription.close(), self.calls.timeout)
