"""`session_ws_middleware`: an id for every session the app has or writes; no stale saves."""

from __future__ import annotations

import logging

import aiohttp_session
from aiohttp import web
from aiohttp.typedefs import Handler

from .app import get_registry
from .keys import ID_CHANGED
from .registry import SessionWSRegistry, _get_session
from .stale import drop_session, has_session_cookie, is_retired, is_unknown

logger = logging.getLogger("aiohttp_session_ws")


@web.middleware
async def session_ws_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request's session a websocket id, creating no session, and keep
    aiohttp_session from saving a session that a login or logout retired.

    Place it after (inside) `aiohttp_session.session_middleware`, so the id is
    saved with the session on the response (the id should be in the cookie
    before a socket opens: Safari ignores cookies set on a websocket upgrade).

    - A request without a session cookie gets an id only if its handler writes
      the session (after the handler, so it is saved in that same response).
    - A session that exists but has no id gets one before the handler, as in
      1.1.1 (`registry.ensure_id`; also for a session placed on a request by
      hand, without aiohttp_session's middleware).
    - A cookie that loads as no session (unknown, emptied, expired,
      undecryptable) or names a retired session gets none.
    - After the handler, a session that was retired while the request ran or
      before it arrived (its websocket id is revoked, or its record is a
      rotation's tombstone) is replaced by a fresh one that is not saved: the
      response sets no cookie, so it cannot log a browser back in nor replace
      the browser's newer cookie. A request that itself logged in or out
      carries a fresh session or id and is saved as usual.
    """
    registry = get_registry(request)
    storage = request.get(aiohttp_session.STORAGE_KEY)
    if storage is None:  # a session placed on the request by hand (or none: it says so)
        await registry.ensure_id(request)
        return await handler(request)
    if has_session_cookie(request):
        session_ws_id = await registry.get_id(request)
        session = await _get_session(request)  # loaded by get_id already
        if session_ws_id is None and not is_retired(session) and not is_unknown(request, session):
            await registry.ensure_id(request)
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
    """Before aiohttp_session saves the session: drop a retired one, give a new one
    the app wrote its id."""
    if not isinstance(response, web.Response | web.HTTPException) or response.prepared:
        return  # aiohttp_session saves nothing for websockets and streams
    session: aiohttp_session.Session | None = request.get(aiohttp_session.SESSION_KEY)
    if session is None:
        return  # never loaded: nothing will be saved
    session_ws_id = await registry.get_id(request)
    if not session.new and (
        is_retired(session)
        or (session_ws_id is not None and await registry.is_revoked(session_ws_id))
    ):
        logger.debug("not saving a session retired by a login or logout")
        await drop_session(request)
        return
    if session_ws_id is None and not session.empty and not request.get(ID_CHANGED):
        # The app wrote a session without an id (a new one, or one that had
        # expired): it is saved now, so with its id.
        await registry.new_id(request)
