"""`session_ws_middleware`: an id for every session the app has or writes; no stale saves."""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from typing import NamedTuple

import aiohttp_session
from aiohttp import web
from aiohttp.typedefs import Handler

from .app import get_registry
from .keys import ID_CHANGED
from .lineage import LineageLookupError
from .logs import RateLimitedLog
from .registry import SessionWSRegistry, _get_session
from .stale import drop_session, has_session_cookie, is_retired, is_unknown, retired_id

logger = logging.getLogger("aiohttp_session_ws")
_unchecked = RateLimitedLog(logger)  # lineage lookups the broker did not answer


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
    arrived = Arrival(None, False, 0.0)
    if has_session_cookie(request):
        session_ws_id = await registry.get_id(request)
        session = await _get_session(request)  # loaded by get_id already
        if session_ws_id is not None:
            arrived = Arrival(session_ws_id, session_ws_id in registry.revoked, time.time())
        elif is_retired(session):
            arrived = Arrival(retired_id(session), True, time.time())
        elif not is_unknown(request, session):
            await registry.ensure_id(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp_session saves on these too
        await _settle(request, registry, exc, arrived)
        raise
    await _settle(request, registry, response, arrived)
    return response


class Arrival(NamedTuple):
    """The session a request's cookie named when it arrived."""

    session_ws_id: Hashable | None
    """Its websocket id (a tombstone's included), or None."""
    retired: bool
    """Already retired then (a tombstone, or an id this process knew was revoked)."""
    at: float
    """When (`time.time()`)."""


async def _settle(
    request: web.Request,
    registry: SessionWSRegistry,
    response: web.StreamResponse,
    arrived: Arrival,
) -> None:
    """Before aiohttp_session saves the session: drop a retired one, give a new one
    the app wrote its id, and end the sessions a login or logout sent with an
    older cookie takes the browser from."""
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
        session_ws_id = await registry.new_id(request)
    arrived_with = arrived.session_ws_id
    if arrived_with is not None and session_ws_id != arrived_with and _will_be_saved(session):
        await _supersede(request, registry, response, arrived, session_ws_id)


async def _supersede(
    request: web.Request,
    registry: SessionWSRegistry,
    response: web.StreamResponse,
    arrived: Arrival,
    session_ws_id: Hashable | None,
) -> None:
    """The response replaces the browser's session (a login or logout): let the
    registry end any newer session it takes the browser from. If that cannot be
    looked up (a cluster's broker is down), refuse (503, nothing saved, counted
    in `stats()["refused"]["lineage_unknown"]`) a request whose cookie was
    already retired when it arrived; let others through (logged)."""
    try:
        await registry.supersede(
            request, response, arrived.session_ws_id, session_ws_id, arrived_at=arrived.at
        )
    except LineageLookupError:
        if not arrived.retired:
            _unchecked.warning("a login or logout went through with its lineage unchecked")
            return
        registry.count_refused("lineage_unknown")
        _unchecked.warning("refused (503) a login or logout sent with a retired cookie")
        await drop_session(request)
        raise web.HTTPServiceUnavailable(
            text="the session store did not answer; try again in a moment"
        ) from None


def _will_be_saved(session: aiohttp_session.Session) -> bool:
    """Whether aiohttp_session's middleware will save `session` (and set its cookie)."""
    return bool(getattr(session, "_changed", True))
