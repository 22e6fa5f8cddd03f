"""Stale sessions: cookies that no longer load, and records retired by a rotation.

aiohttp_session loads an unknown, emptied, expired or undecryptable cookie as a
*new* session, and saves whatever is changed last. A request that left the
browser before a login or logout still carries the old cookie; if its response
saved a session, the browser's jar would take that cookie over the newer one.
The rules here let the library tell such requests apart and never save for them:

- a cookie that loads as a new (or an expired, empty) session is *unknown*;
- a server-side record that a rotation retired holds only `RETIRED_KEY` (the
  websocket id it had) for the registry's `revocation_ttl` (a *tombstone*), so its
  cookie is told apart from an unknown one while tabs holding it may still be in
  flight, and a login or logout sent with it can end the sessions that replaced it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from typing import Final

import aiohttp_session
from aiohttp import web

from .ids import stored_id

RETIRED_KEY: Final = "aiohttp_session_ws_retired"
"""The only key of a retired session's record; its value is the websocket id the
session had (True if it had none)."""

RETIRED_RECORD_TTL: Final = 60
"""Seconds a server-side storage keeps the tombstone of a retired session, at least."""


def has_session_cookie(request: web.Request) -> bool:
    """True if the request carries the session storage's cookie (usable or not)."""
    storage: aiohttp_session.AbstractStorage | None = request.get(aiohttp_session.STORAGE_KEY)
    return storage is not None and storage.load_cookie(request) is not None


def is_unknown(request: web.Request, session: aiohttp_session.Session) -> bool:
    """True if the request's cookie loads as no session: unknown, emptied, expired or
    undecryptable (aiohttp_session then hands out a new, empty session; one past its
    `max_age` keeps its identity but none of its data)."""
    if not session.empty or not has_session_cookie(request):
        return False
    if session.new:
        return True
    return session.max_age is not None and time.time() - session.created > session.max_age


def is_retired(session: aiohttp_session.Session) -> bool:
    """True if `session` was loaded from the tombstone a rotation left behind."""
    return not session.new and RETIRED_KEY in session


def retired_id(session: aiohttp_session.Session) -> Hashable | None:
    """The websocket id a tombstone's session had, or None (not a tombstone, or none)."""
    if not is_retired(session):
        return None
    value = session.get(RETIRED_KEY)
    return None if value is True else stored_id(value)


async def retire_record(
    request: web.Request,
    response: web.StreamResponse,
    session: aiohttp_session.Session,
    session_ws_id: Hashable | None = None,
    ttl: float = RETIRED_RECORD_TTL,
) -> bool:
    """Replace a server-side session's record by a tombstone that expires shortly.

    For sessions with a storage identity (RedisStorage, MemcachedStorage); a
    session without one (cookie storages, a session never saved) keeps nothing
    server-side and is left alone (returns False). The storage's cookie is
    deleted on `response`; a session saved on it afterwards sets its own cookie
    over that. `session` is the tombstone afterwards: `save_record_now` writes
    it again. The tombstone keeps `session_ws_id` (the retired session's
    websocket id; that of `session` if it is itself a tombstone) for `ttl`
    seconds (at least `RETIRED_RECORD_TTL`; the registry passes its
    `revocation_ttl`, so a login sent with the cookie finds the lineage as long
    as the lineage lasts).
    """
    if session.identity is None:
        return False
    if session_ws_id is None:
        session_ws_id = retired_id(session)
    session.invalidate()
    session[RETIRED_KEY] = True if session_ws_id is None else session_ws_id
    session.max_age = max(RETIRED_RECORD_TTL, math.ceil(ttl))
    storage: aiohttp_session.AbstractStorage = request[aiohttp_session.STORAGE_KEY]
    await storage.save_session(request, response, session)
    storage.save_cookie(response, "")
    return True


async def save_record_now(request: web.Request, session: aiohttp_session.Session) -> None:
    """Write a server-side session's record now, without a cookie (the response at
    hand, a websocket, cannot carry one; the browser keeps its cookie, which
    names the same record). Raises `RuntimeError` for a session without a
    storage identity: its data lives in the cookie."""
    if session.identity is None:
        raise RuntimeError("only a server-side session can be saved without a cookie")
    storage: aiohttp_session.AbstractStorage = request[aiohttp_session.STORAGE_KEY]
    # The storage sets its cookie on the response it is given: give it one that is
    # never sent.
    await storage.save_session(request, web.Response(), session)


async def drop_session(request: web.Request) -> None:
    """Keep the request's session from being saved: give the request a fresh,
    unchanged session in its place (aiohttp_session saves only changed ones)."""
    await aiohttp_session.new_session(request)
