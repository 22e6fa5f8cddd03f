"""The steps taken around remember/forget: close the session's sockets, rotate ids."""

from __future__ import annotations

from typing import Final

import aiohttp_session
from aiohttp import web

from ..app import get_registry

RETIRED_RECORD_TTL: Final = 60
"""Seconds a server-side storage keeps the emptied record of a retired session."""


def check_identity(identity: object) -> None:
    """Raise aiohttp_security's own error for an empty or non-string identity."""
    if not identity or not isinstance(identity, str):
        raise ValueError("Identity should be a str value.")


async def close_session_sockets_after(request: web.Request, response: web.StreamResponse) -> None:
    """Capture (and revoke) the current websocket id; close its sockets after `response`."""
    await get_registry(request).schedule_close_all_session(request, response)


async def rotate_session(request: web.Request, response: web.StreamResponse) -> None:
    """Replace the request's session with a fresh, empty one.

    With a server-side storage (RedisStorage, MemcachedStorage: sessions that
    have a storage identity) the old record is emptied now, through the
    storage's own `save_session`, and expires shortly after, so its cookie no
    longer authenticates anyone. Cookie storages keep nothing server-side:
    the old cookie is simply replaced on `response`.
    """
    old = await aiohttp_session.get_session(request)
    await aiohttp_session.new_session(request)
    if old.identity is None:  # a cookie storage, or a session never saved
        return
    old.invalidate()
    old.max_age = RETIRED_RECORD_TTL
    storage: aiohttp_session.AbstractStorage = request[aiohttp_session.STORAGE_KEY]
    # This also deletes the cookie on `response`; the middleware then sets the
    # new session's cookie over it.
    await storage.save_session(request, response, old)


async def rotate_websocket_id(request: web.Request) -> None:
    """Give the request's session a fresh websocket id."""
    await get_registry(request).new_id(request)
