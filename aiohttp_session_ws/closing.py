"""Closing many websockets at once, each close bounded in time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiohttp import web

logger = logging.getLogger("aiohttp_session_ws")


async def close_sockets(
    sockets: Iterable[web.WebSocketResponse],
    *,
    code: int,
    message: bytes,
    timeout: float,
) -> int:
    """Close `sockets` concurrently and return how many this call closed.

    Sockets already closed or never prepared are skipped without error. A peer
    that does not answer the close handshake within `timeout` seconds has its
    transport dropped (aiohttp does that when a close is cancelled), so one dead
    client cannot stall the rest.
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

    tasks = [asyncio.ensure_future(close_one(ws)) for ws in sockets if not ws.closed]
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        logger.info(
            "%d websocket(s) did not finish closing in %.1fs; dropped", len(pending), timeout
        )
    return closed
