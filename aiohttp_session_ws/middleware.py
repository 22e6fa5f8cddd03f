"""`session_ws_middleware`: give every session a websocket id before any socket opens."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from .app import get_registry


@web.middleware
async def session_ws_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ensure the request's session carries a websocket id.

    Place it after (inside) `aiohttp_session.session_middleware`, so the id is
    saved with the session on the response. Browsers such as Safari ignore
    cookies set on a websocket upgrade, so the id should exist before one.
    """
    await get_registry(request).ensure_id(request)
    return await handler(request)
