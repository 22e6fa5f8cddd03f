"""A websocket handler that greets its user (as aiohttp_security sees them), then waits."""

from __future__ import annotations

import aiohttp_security
from aiohttp import web

from aiohttp_session_ws import session_ws


async def hello_user_ws(request: web.Request) -> web.WebSocketResponse:
    """Send `{"user": <authorized user id or None>}` unless refused, then read until closed."""
    async with session_ws(request) as ws:
        if not ws.closed:
            await ws.send_json({"user": await aiohttp_security.authorized_userid(request)})
        async for _ in ws:
            pass
    return ws
