"""Closing many websockets at once, each close bounded in time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiohttp import web

from .websocket import SessionWebSocketResponse

logger = logging.getLogger("aiohttp_session_ws")


def drop_transport(ws: web.WebSocketResponse) -> None:
    """Abort the connection under `ws` if the library made it (a no-op once it is gone).

    Sockets created by hand (plain `web.WebSocketResponse`) expose no
    connection to abort; their close is cancelled and left to aiohttp.
    """
    if isinstance(ws, SessionWebSocketResponse):
        ws.drop_connection()


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
    sockets = list(sockets)
    if drop_closed:
        for ws in sockets:
            if ws.closed:
                drop_transport(ws)
    # One task per socket straight from ws.close(), which returns False when
    # the socket was already closed (by a racing caller, say): only this
    # call's closes count, and no wrapper coroutine is needed.
    tasks = {
        asyncio.ensure_future(ws.close(code=code, message=message)): ws
        for ws in sockets
        if ws.prepared and not ws.closed
    }
    if not tasks:
        return 0
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    closed = len(pending)  # each got past the already-closed check: they are closing
    for task in done:
        # A close raises (or is cancelled) only after marking the socket closed: ours.
        if task.cancelled():
            closed += 1
            continue
        error = task.exception()
        if error is not None:
            logger.debug("error while closing a websocket: %s", type(error).__name__)
            closed += 1
        elif task.result():
            closed += 1
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
