"""The websocket `session_ws` yields: aiohttp's, with closes that finish their handshake.

Everything here that depends on how aiohttp's `WebSocketResponse` behaves is in
this module (tested on the minimum supported aiohttp and on the latest).

Why a reader task: aiohttp's `close()` completes the RFC 6455 closing handshake
(send Close, wait for the client's Close, then close TCP) only when no task is
blocked in `receive()`. Called from another task while the handler waits in
`receive()`, it closes TCP right after its Close frame, and a client answering a
moment later reports 1006 instead of the code. And a handler that never reads
never answers a client's Close or pings.

Here a close started by another task first interrupts the pending read, by
cancelling it (the path aiohttp's own receive timeouts take), so that aiohttp's
`close()` reads the client's Close frame itself. Who reads:

- While the handler reads (it is in `receive()`, or back in it within one pass
  of the event loop), it reads from aiohttp itself, as with a plain socket; a
  close from another task cancels that read and the handler's `receive()`
  swallows exactly that cancellation (any other is re-raised), waits for the
  close, and returns CLOSING.
- Once the handler is found not reading (one loop pass after the upgrade, or
  after `session_ws` handed it the socket, or after a read returned), a small
  reader task owned by the socket reads from then on: it answers pings and the
  client's Close as aiohttp does and hands every message to the handler's
  `receive()`; a close cancels the reader's read.

On Python 3.10 (no `Task.uncancel`, so an interrupt could swallow a cancellation
meant for the handler) the reader task reads for every socket from the upgrade.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http import WS_CLOSING_MESSAGE

if TYPE_CHECKING:
    from aiohttp import WSMessage
    from aiohttp.abc import AbstractStreamWriter
    from aiohttp.web_request import BaseRequest

READ_AHEAD_BYTES: Final = 2**16
"""The reader stops reading (and aiohttp's flow control applies) while this much
received data waits for a handler that does not read."""

READER_TASK_NAME: Final = "aiohttp_session_ws reader"
"""The name of each socket's reader task (as `asyncio.all_tasks()` lists it)."""

_ENDS: Final = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})
_DATA: Final = frozenset({WSMsgType.TEXT, WSMsgType.BINARY})
_NOT_CLOSING: Final = 0
_CLOSING: Final = 1  # a close() is under way
_CLOSED: Final = 2


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


_DIRECT_READS: Final = hasattr(asyncio.Task, "uncancel")
"""Python >= 3.11: a handler's read interrupted by a close can tell that cancellation
from another one landing at the same moment (`Task.uncancel`). On 3.10 the reader
task reads for every socket."""

_CLOSE_SKIPS_MESSAGES: Final = _version(aiohttp.__version__) >= (3, 10, 11)
"""aiohttp >= 3.10.11 (its issue 9506): `close()` waits for the client's Close
past other messages; older versions read one message and give up on anything else."""


class SessionWebSocketResponse(web.WebSocketResponse):
    """A `web.WebSocketResponse` whose closes complete the closing handshake.

    For the handler it behaves as aiohttp's: `receive()` (with `timeout=`),
    `receive_str/bytes/json`, `async for`, `close()`, `close_code` and
    `exception()` return and raise what they would. The differences:

    - pings and the client's Close are answered even while the handler does
      not read (as long as less than 64 KiB of received data waits for it),
      by a reader task started once the handler is found not reading;
    - `close()` from any task waits (up to aiohttp's `timeout`, default 10 s)
      for the client's Close before closing TCP, so the client reads the code;
      a handler waiting in `receive()` gets CLOSING (as in aiohttp) once that
      is done, and `session_ws` waits for it when the handler ends first;
    - with `heartbeat=`, the connection of a socket aiohttp closed for a missed
      pong is aborted half a heartbeat later, so a handler blocked in a send to
      a peer that stopped reading returns.
    """

    # Slots, not the instance dict: aiohttp's response already holds 26 keys
    # there, and past 30 CPython stops sharing the keys between instances
    # (about 1.3 KiB more per socket).
    __slots__ = (
        "__buffered",
        "__check",
        "__closed_waiter",
        "__closing",
        "__direct",
        "__direct_ok",
        "__heartbeat",
        "__hold_check",
        "__inbox",
        "__interrupted",
        "__owned",
        "__reader",
        "__reading",
        "__receive_timeout",
        "__request",
        "__room",
        "__waiter",
    )

    # aiohttp's responses hash by identity in Python (hash(id(self))); the same
    # identity hash in C spares the registry's sets a Python call per lookup.
    __hash__ = object.__hash__

    def __init__(
        self,
        *,
        receive_timeout: float | None = None,
        heartbeat: float | None = None,
        **ws_options: Any,
    ) -> None:
        # The reader waits without a timeout; the handler's receive() applies it.
        super().__init__(heartbeat=heartbeat, **ws_options)
        self.__receive_timeout = receive_timeout
        self.__heartbeat = heartbeat
        self.__owned = False  # prepared here: the handler or the reader task reads
        self.__direct_ok = _DIRECT_READS  # the handler may read from aiohttp itself
        self.__direct: asyncio.Task[Any] | None = None  # the task in such a read
        self.__interrupted: asyncio.Future[None] | None = None  # set once that read ended
        self.__check: asyncio.Handle | None = None  # see __ensure_reader
        self.__hold_check = False  # see _hold_read_check
        self.__reader: asyncio.Task[None] | None = None  # while it runs
        self.__reading = False
        self.__inbox: deque[WSMessage | Exception] | None = None
        self.__buffered = 0
        self.__waiter: asyncio.Future[None] | None = None
        self.__room: asyncio.Future[None] | None = None
        self.__closing = _NOT_CLOSING
        self.__closed_waiter: asyncio.Future[None] | None = None
        self.__request: BaseRequest | None = None  # its transport, when dropped

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter:
        """Upgrade (as aiohttp does); unless the handler reads by then, a reader task will."""
        writer = await super().prepare(request)
        if not self.__owned:
            self.__owned = True
            self.__request = request
            if self.__direct_ok:
                if not self.__hold_check:
                    self.__check = asyncio.get_running_loop().call_soon(self.__ensure_reader)
            else:
                self.__start(self.__read(), reading=True)
        return writer

    # -- who reads ---------------------------------------------------------

    def __ensure_reader(self) -> None:
        """Start the reader task if the handler is not reading (one loop pass after
        the upgrade or `_release_read_check`, or after its read returned): from then
        on the reader reads."""
        self.__check = None
        if self.__direct is None and self.__direct_ok and not self.closed:
            self.__direct_ok = False
            self.__start(self.__read(), reading=True)

    def _hold_read_check(self) -> None:
        """Do not look for a handler that is not reading until `_release_read_check`:
        the socket is upgraded before the handler gets it (`session_ws` may still
        await a remote revocation check then), and reading is the handler's job."""
        self.__hold_check = True

    def _release_read_check(self) -> None:
        """The handler has the socket: check, one loop pass from now, that it reads."""
        self.__hold_check = False
        if self.__direct_ok and self.__check is None and not self.closed:
            self.__check = asyncio.get_running_loop().call_soon(self.__ensure_reader)

    def __start(self, work: Coroutine[Any, Any, None], *, reading: bool) -> None:
        """Run the reader (or, after a direct read's end, only the heartbeat watchdog)."""
        self.__reading = reading
        # Named: a default name is formatted per task ("Task-<n>").
        self.__reader = asyncio.get_running_loop().create_task(work, name=READER_TASK_NAME)

    def __after_direct_read(self) -> None:
        self.__direct = None
        interrupted = self.__interrupted
        if interrupted is not None:
            if not interrupted.done():
                interrupted.set_result(None)
        elif self.__direct_ok and self.__check is None:
            self.__check = asyncio.get_running_loop().call_soon(self.__ensure_reader)

    def __is_interrupt(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether a CancelledError in a direct read is close()'s interrupt alone."""
        if self.__interrupted is None:
            return False
        uncancel = getattr(task, "uncancel", None)  # Python >= 3.11 (no direct reads before)
        return uncancel is not None and uncancel() == 0  # cancelled by someone else too: theirs

    # -- the reader --------------------------------------------------------

    async def __read(self) -> None:
        # One coroutine (one frame per open socket), hence the nesting.
        receive = super().receive
        try:
            try:
                while True:
                    msg = await receive()
                    self.__deliver(msg, len(msg.data) if msg.type in _DATA else 0)
                    if msg.type in _ENDS:
                        break
                    if self.__buffered >= READ_AHEAD_BYTES:
                        await self.__wait_for_room()
                        if self.closed:  # by aiohttp's heartbeat, while we did not read
                            break
            except Exception as exc:  # what aiohttp's receive() would have raised
                self.__deliver(exc, 0)
            finally:
                # Cancelled: by close(), which tells a waiting handler once it
                # is done, or by stop_reading(), once the handler is.
                self.__reading = False
            if self.__heartbeat:
                await self.__drop_when_stuck(self.__heartbeat)
        finally:
            # A cancelled task keeps its CancelledError, whose traceback holds
            # this coroutine's frame and so this socket: forgetting the task
            # spares the garbage collector a reference cycle per closed socket.
            self.__reader = None

    async def __wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        while self.__buffered >= READ_AHEAD_BYTES and not self.closed:
            self.__room = room = loop.create_future()
            try:
                # With a heartbeat, look at `closed` now and then (aiohttp gives no event).
                await asyncio.wait(
                    [room], timeout=self.__heartbeat / 2 if self.__heartbeat else None
                )
            finally:
                self.__room = None

    async def __watchdog(self, heartbeat: float) -> None:
        try:
            await self.__drop_when_stuck(heartbeat)
        finally:
            self.__reader = None  # as in __read: no cycle through a cancelled task

    async def __drop_when_stuck(self, heartbeat: float) -> None:
        """Abort the connection half a heartbeat after the socket closed.

        aiohttp closes a transport gracefully, which waits for unsent data to be
        flushed: to a peer that stopped reading, forever, with the handler
        stuck in a send and so never unregistering its socket.
        """
        while not self.closed:  # noqa: ASYNC110 - rare: a Close read with autoclose=False
            await asyncio.sleep(heartbeat / 2)
        await asyncio.sleep(heartbeat / 2)
        self.drop_connection()

    def __deliver(self, item: WSMessage | Exception, size: int) -> None:
        if self.__inbox is None:
            self.__inbox = deque()
        self.__inbox.append(item)
        self.__buffered += size
        self.__wake()

    def __wake(self) -> None:
        waiter = self.__waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- what the handler calls --------------------------------------------

    async def receive(self, timeout: float | None = None) -> WSMessage:
        """The next message from the client, as `web.WebSocketResponse.receive`.

        Raises `asyncio.TimeoutError` after `timeout` seconds (default: the
        `receive_timeout` option) and `RuntimeError` for concurrent calls.
        """
        if not self.__owned:  # not prepared: aiohttp's own errors
            return await super().receive(timeout)
        if self.__waiter is not None or self.__direct is not None:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        timeout = timeout or self.__receive_timeout
        interrupted = False
        if self.__direct_ok and self.__closing == _NOT_CLOSING:
            # No reader yet: read from aiohttp here, where close() can interrupt it.
            self.__direct = task = asyncio.current_task()
            try:
                msg = await super().receive(timeout)
            except asyncio.CancelledError:
                if not self.__is_interrupt(task):
                    raise
                interrupted = True  # close() is under way: wait for it below
            else:
                if msg.type in _ENDS:
                    self.__direct_ok = False  # nothing left to read
                    if self.__heartbeat and self.__reader is None:
                        # As the reader does once reading ended (a sender may be stuck).
                        self.__start(self.__watchdog(self.__heartbeat), reading=False)
                return msg
            finally:
                self.__after_direct_read()
        while True:
            inbox = self.__inbox
            if inbox:
                return self.__take(inbox)
            if interrupted:
                if self.__closing == _CLOSED:  # (close() delivers CLOSING to a waiter)
                    return WS_CLOSING_MESSAGE
            elif not self.__reading and (self.closed or self.__closing == _NOT_CLOSING):
                # Closed or closing: aiohttp answers at once (CLOSED, CLOSING, ...).
                return await super().receive(timeout)
            self.__waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout:
                    await asyncio.wait_for(waiter, timeout)
                else:
                    await waiter
            finally:
                self.__waiter = None

    def __take(self, inbox: deque[WSMessage | Exception]) -> WSMessage:
        item = inbox.popleft()
        if not inbox:
            self.__inbox = None  # an idle socket keeps no queue
        if isinstance(item, Exception):
            raise item
        if item.type in _DATA:
            self.__buffered -= len(item.data)
            room = self.__room
            if room is not None and not room.done() and self.__buffered < READ_AHEAD_BYTES:
                room.set_result(None)
        return item

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        """Close with the closing handshake; True if this call closed the socket.

        Waits up to aiohttp's `timeout` option (default 10 s) for the client's
        Close; cancel the call to stop waiting (the connection is then closed,
        and `close_code` reads 1006). Returns False at once if the socket is
        closed or a close is under way (`stop_reading` waits for that one).
        """
        if self.__closing != _NOT_CLOSING:  # under way or done: as aiohttp, at once
            return False
        reader = self.__reader
        if not self.__owned or self.closed:
            return await super().close(code=code, message=message, drain=drain)
        self.__closing = _CLOSING
        self.__direct_ok = False
        direct = self.__direct
        # No task kept in a local: a cancelled close's error holds this frame.
        if (reader is not None or direct is not None) and asyncio.current_task() in (
            reader,
            direct,
        ):
            try:  # aiohttp's receive() answering the client's Close
                return await super().close(code=code, message=message, drain=drain)
            finally:
                self.__closed()
        try:
            # Stop the pending read (the handler's or the reader's, by the path
            # aiohttp's receive timeouts take), so that aiohttp's close() reads
            # the client's Close; unread messages are dropped, as aiohttp drops
            # them. A handler whose read this interrupts waits for this close.
            # On aiohttp >= 3.10.11 the Close frame goes out at once: aiohttp
            # feeds the pending read a CLOSING and waits for it to end, which the
            # cancellation does (leaving that CLOSING unread, skipped). Older
            # aiohttp gives up on the first message that is not a Close: there
            # the cancelled read ends first (one loop iteration).
            if direct is not None:
                self.__interrupted = interrupted = asyncio.get_running_loop().create_future()
                direct.cancel()
                direct = None
                if not _CLOSE_SKIPS_MESSAGES:
                    await interrupted
            elif self.__reading and reader is not None:
                reader.cancel()
                if not _CLOSE_SKIPS_MESSAGES:
                    await asyncio.wait([reader])
            self.__inbox = None
            self.__buffered = 0
            return await super().close(code=code, message=message, drain=drain)
        finally:
            self.__closed()
            # A handler waiting in receive() gets CLOSING, as in aiohttp, but only
            # now: it may then return, and aiohttp closes the connection.
            if self.__waiter is not None:
                self.__deliver(WS_CLOSING_MESSAGE, 0)

    def __closed(self) -> None:
        self.__closing = _CLOSED
        waiter = self.__closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def _reading_or_closing(self) -> bool:
        """Whether `stop_reading` has anything to do (a reader task or its start pending,
        a close under way)."""
        return self.__reader is not None or self.__check is not None or self.__closing == _CLOSING

    async def stop_reading(self) -> None:
        """Wait for a close under way, then stop the reader: the handler is done.

        aiohttp closes the connection once the handler returns; waiting here
        lets a close started elsewhere receive the client's Close first.
        """
        self.__direct_ok = False
        check, self.__check = self.__check, None
        if check is not None:
            check.cancel()
        if self.__closing == _CLOSING:
            if self.__closed_waiter is None:
                self.__closed_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self.__closed_waiter)
        reader = self.__reader
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.wait([reader])

    def drop_connection(self) -> None:
        """Abort the TCP connection under the socket (a no-op once it is gone)."""
        transport = None if self.__request is None else self.__request.transport
        if transport is not None:
            transport.abort()
