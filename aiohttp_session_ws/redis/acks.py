"""Acknowledgements: the answers other nodes send to a close that waits for them."""

from __future__ import annotations

import asyncio
import uuid

from . import wire


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
