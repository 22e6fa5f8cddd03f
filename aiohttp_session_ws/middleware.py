"""`session_ws_middleware`: an id for every session the app saves, and no stale saves."""

from __future__ import annotations

import logging

import aiohttp_session
from aiohttp import web
from aiohttp.typedefs import Handler

from .app import get_registry
from .registry import SessionWSRegistry, require_session_middleware
from .stale import drop_session, is_retired, written_here

logger = logging.getLogger("aiohttp_session_ws")


@web.middleware
async def session_ws_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before aiohttp_session saves the request's session, settle what it may save.

    Place it after (inside) `aiohttp_session.session_middleware`. It creates no
    session and loads none the handler did not load. After the handler:

    - a session the app wrote gets a websocket id if it has none, so the id is
      in the cookie before the first socket opens (Safari ignores cookies set
      on a websocket upgrade);
    - a session that was retired while the request ran, or before it arrived
      (its websocket id is revoked, or its record is a rotation's tombstone),
      is not saved: the response sets no cookie, so it cannot revive a logged-out
      session nor replace the browser's newer cookie.
    """
    registry = get_registry(request)
    require_session_middleware(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp_session saves on these too
        await _settle(request, registry, exc)
        raise
    await _settle(request, registry, response)
    return response


async def _settle(
    request: web.Request, registry: SessionWSRegistry, response: web.StreamResponse
) -> None:
    if not isinstance(response, web.Response | web.HTTPException) or response.prepared:
        return  # aiohttp_session saves nothing for websockets and streams
    session: aiohttp_session.Session | None = request.get(aiohttp_session.SESSION_KEY)
    if session is None:
        return  # the handler never loaded it: nothing will be saved
    session_ws_id = await registry.get_id(request)
    if not session.new and (
        is_retired(session)
        or (session_ws_id is not None and await registry.is_revoked(session_ws_id))
    ):
        # A request that itself logged in or out carries a fresh session or id.
        logger.debug("not saving a session retired by a login or logout")
        await drop_session(request)
        return
    if session_ws_id is not None or session.empty:
        return
    if session.new or await written_here(request, session):
        await registry.new_id(request)
