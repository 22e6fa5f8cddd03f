"""A TCP proxy the test controls: it goes silent on connections without FIN or RST.

What a NAT gateway or a load balancer does to a flow it forgot, or a partition,
looks like this from both ends: the sockets stay open, writes succeed (into
kernel buffers), and nothing arrives. Data the proxy holds is never sent.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.redis_server import free_port


class _Link:
    """One client connection and the proxy's connection to the target."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.writers = (client, server)
        self.forgotten = False
        """Silenced for good (`SilentProxy.silence`)."""
        self.subscriber = False
        """The client sent a SUBSCRIBE on it."""
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


class SilentProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`, until told to go silent.

    - `silence()`: every open connection stops forwarding, for good, without
      being closed; new connections are forwarded (a NAT forgot the old flows).
    - `deafen_subscribers()`: connections that subscribe (the client sent
      ``SUBSCRIBE``), open and new, stop forwarding until `hear()`; the others
      keep working (a node's pub/sub connection is cut, its pool is not).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.links: list[_Link] = []
        self.subscribers_deaf = False
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self.links.append(link)
        link.tasks = [
            asyncio.ensure_future(self._pump(link, reader, up_writer, upstream=True)),
            asyncio.ensure_future(self._pump(link, up_reader, writer, upstream=False)),
        ]

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: bool,
    ) -> None:
        try:
            while True:
                await link.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                if upstream and b"SUBSCRIBE" in data.upper():
                    link.subscriber = True
                    self._update(link)
                await link.flowing.wait()  # read, then silenced: held, never sent
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if link.flowing.is_set():  # a silent link never closes (no FIN, no RST)
                with contextlib.suppress(Exception):
                    writer.close()

    def _update(self, link: _Link) -> None:
        silent = link.forgotten or (self.subscribers_deaf and link.subscriber)
        if silent:
            link.flowing.clear()
        else:
            link.flowing.set()

    def silence(self) -> int:
        """Stop forwarding on every open connection, for good; return how many."""
        count = 0
        for link in self.links:
            if not link.forgotten:
                link.forgotten = True
                count += 1
                self._update(link)
        return count

    def deafen_subscribers(self) -> None:
        """Subscribed connections, open and new, forward nothing until `hear()`."""
        self.subscribers_deaf = True
        for link in self.links:
            self._update(link)

    def hear(self) -> None:
        self.subscribers_deaf = False
        for link in self.links:
            self._update(link)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self.links:
            link.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
