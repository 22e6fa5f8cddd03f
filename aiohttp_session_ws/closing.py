"""Closing many websockets at once, each close bounded in time."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable

from aiohttp import web

logger = logging.getLogger("aiohttp_session_ws")

_transports: weakref.WeakKeyDictionary[web.WebSocketResponse, asyncio.Transport] = (
    weakref.WeakKeyDictionary()
)


def track_transport(ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
    """Remember the connection under `ws` (from `request.transport`), so that a close
    that cannot finish can drop it."""
    if transport is not None:
        _transports[ws] = transport


def drop_transport(ws: web.WebSocketResponse) -> None:
    """Abort the connection under `ws`, if known; a no-op once it is gone.

    aiohttp closes a transport gracefully, which waits for unsent data to be
    flushed: to a peer that stopped reading, forever, with the handler stuck
    in `send_*` and so never unregistering its socket.
    """
    transport = _transports.pop(ws, None)
    if transport is not None:
        transport.abort()


async def close_sockets(
    sockets: Iterable[web.WebSocketResponse],
    *,
    code: int,
    message: bytes,
    timeout: float,
    drop_closed: bool = False,
) -> int:
    """Close `sockets` concurrently and return how many this call closed.

    Sockets already closed or never prepared are skipped without error (with
    `drop_closed`, as on shutdown, the connections of already-closed ones are
    dropped: their handler may be stuck writing to a peer that stopped reading).
    A close that does not finish within `timeout` seconds is cancelled and its
    connection aborted, so one dead client cannot stall the rest.
    """
    closed = 0

    async def close_one(ws: web.WebSocketResponse) -> None:
        nonlocal closed
        if ws.closed or not ws.prepared:
            return
        # ws.close() marks the socket closed before its first await, so no
        # other caller can count this socket too.
        closed += 1
        try:
            await ws.close(code=code, message=message)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken transport must not stop the fan-out
            logger.debug("error while closing a websocket", exc_info=True)

    sockets = list(sockets)
    if drop_closed:
        for ws in sockets:
            if ws.closed:
                drop_transport(ws)
    tasks = {asyncio.ensure_future(close_one(ws)): ws for ws in sockets if not ws.closed}
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        for task in pending:
            drop_transport(tasks[task])
        logger.info(
            "%d websocket(s) did not finish closing in %.1fs; dropped", len(pending), timeout
        )
    return closed
