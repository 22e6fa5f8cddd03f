"""Module-level helpers over the application's registry (the 1.1.1 API)."""

from __future__ import annotations

from collections.abc import Hashable

from aiohttp import web

from .app import get_registry


async def get_session_ws_id(request: web.Request) -> Hashable | None:
    """The request's websocket id, or None."""
    return await get_registry(request).get_id(request)


async def new_session_ws_id(request: web.Request) -> Hashable:
    """Give the request's session a fresh websocket id and return it."""
    return await get_registry(request).new_id(request)


async def delete_session_ws_id(request: web.Request) -> None:
    """Remove the websocket id from the request's session."""
    return await get_registry(request).delete_id(request)


async def ensure_session_ws_id(request: web.Request) -> Hashable:
    """Return the request's websocket id, creating one if missing."""
    return await get_registry(request).ensure_id(request)


async def schedule_close_all_session_ws(request: web.Request, response: web.StreamResponse) -> None:
    """Close the current session's sockets right after `response` is delivered.

    The id is captured (and revoked) now; keep-alive is ended on `response`.
    Returns at once. Rotate the id afterwards with `new_session_ws_id`.
    """
    return await get_registry(request).schedule_close_all_session(request, response)


def set_session_ws_deadline(request: web.Request, expires_at: float) -> None:
    """Close the websocket `request` opens (or opened) at `expires_at` at the latest.

    `expires_at` is in seconds since the epoch, like `time.time()` and a JWT's `exp`.
    For identity policies whose credentials expire on their own: call it from the
    policy's `identify`, a key provider or the websocket handler. It only brings the
    deadline forward; the socket is closed with the session-ended code and the
    reason "session expired". Not async. Raises TypeError/ValueError for a value
    that is not a time.
    """
    get_registry(request).set_deadline(request, expires_at)
