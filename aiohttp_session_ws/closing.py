"""Closing many websockets at once, each close bounded in time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

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
    on_closed: Callable[[int], None] | None = None,
) -> int:
    """Close `sockets` concurrently and return how many this call closed.

    Sockets already closed or never prepared are skipped without error (with
    `drop_closed`, as on shutdown, the connections of already-closed ones are
    dropped: their handler may be stuck writing to a peer that stopped reading).
    A close that does not finish within `timeout` seconds is cancelled and its
    connection aborted, so one dead client cannot stall the rest. If this call is
    cancelled (a scheduled close cut short by shutdown), the closes under way end
    as at the timeout. `on_closed` gets the count once, also when cancelled.
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
    closed = 0
    try:
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            closed = len(pending)  # each got past the already-closed check: they are closing
            closed += sum(1 for task in done if _closed_here(task))
            if pending:
                await _abort(pending, tasks)
                logger.info(
                    "%d websocket(s) did not finish closing in %.1fs; dropped",
                    len(pending),
                    timeout,
                )
    except asyncio.CancelledError:
        pending = {task for task in tasks if not task.done()}
        await _abort(pending, tasks)
        # A close that had begun marked its socket closed: ours (one never started is not).
        closed = sum(1 for task, ws in tasks.items() if ws.closed and _closed_here(task))
        raise
    finally:
        if on_closed is not None:
            on_closed(closed)
    return closed


def _closed_here(task: asyncio.Task[bool]) -> bool:
    """Whether a finished `ws.close()` task closed its socket.

    A close raises (or is cancelled) only after marking the socket closed: ours.
    """
    if task.cancelled():
        return True
    error = task.exception()
    if error is not None:
        logger.debug("error while closing a websocket: %s", type(error).__name__)
        return True
    return bool(task.result())


async def _abort(
    pending: set[asyncio.Task[bool]], tasks: dict[asyncio.Task[bool], web.WebSocketResponse]
) -> None:
    """Cancel closes still under way and drop their connections."""
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        drop_transport(tasks[task])
