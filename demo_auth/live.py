"""GET /ws: a websocket tied to the session; says who you are, then ticks with presence."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from aiohttp import web

from aiohttp_session_ws import SessionWSRegistry, get_registry, get_session_ws_id, session_ws

from .pages import current_user

TICK_SECONDS = 1.0


def other_tabs(registry: SessionWSRegistry, session_ws_id: Hashable) -> int:
    """Open sockets of this session besides this one, on this node: this browser's other
    tabs (another browser of the same user has a session of its own)."""
    return max(len(registry.get(session_ws_id, ())) - 1, 0)


async def feed(ws: web.WebSocketResponse, user: str | None, request: web.Request) -> None:
    """Say who the socket belongs to, then send a tick every second until it closes."""
    registry = get_registry(request)
    session_ws_id = await get_session_ws_id(request)
    seconds = 0
    try:
        await ws.send_json({"type": "hello", "user": user})
        while not ws.closed:
            others = other_tabs(registry, session_ws_id)
            await ws.send_json({"type": "tick", "seconds": seconds, "others": others})
            await asyncio.sleep(TICK_SECONDS)
            seconds += 1
    except ConnectionError:  # closed between the check and the send
        return


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """The live panel's socket. The first message names the user (null: anonymous)."""
    async with session_ws(request, heartbeat=30) as ws:
        if ws.closed:  # a revoked session: session_ws already closed it with 4001
            return ws
        ticker = asyncio.create_task(feed(ws, await current_user(request), request))
        try:
            async for _ in ws:  # keep reading, so closes and pings are handled
                pass
        finally:
            ticker.cancel()
    return ws
