"""The steps taken around remember/forget: close the session's sockets, rotate ids."""

from __future__ import annotations

import functools
from typing import Literal

import aiohttp_session
from aiohttp import web
from aiohttp_security import AbstractIdentityPolicy, SessionIdentityPolicy

from ..app import get_registry
from ..stale import retire_record, save_record_now


def check_identity(identity: object) -> None:
    """Raise aiohttp_security's own error for an empty or non-string identity."""
    if not identity or not isinstance(identity, str):
        raise ValueError("Identity should be a str value.")


def carries_cookies(response: web.StreamResponse) -> bool:
    """True if the session can be saved on `response` and cookies set on it.

    aiohttp_session saves the session only on a `web.Response` (raised HTTP
    exceptions included) that has not been sent yet: never on a websocket or a
    stream, nor on anything already prepared.
    """
    return isinstance(response, web.Response | web.HTTPException) and not response.prepared


async def session_to_change_in_place(
    request: web.Request,
    response: web.StreamResponse,
    inner_policy: AbstractIdentityPolicy,
    action: Literal["remember", "forget"],
    *,
    rotate_session: bool,
) -> aiohttp_session.Session:
    """The server-side session that `action` can change without a cookie.

    For a `response` that cannot carry a cookie (a websocket: `forget(request, ws)`
    in a socket handler). Only a session-based identity policy over a server-side
    storage can log in or out there: its record is rewritten in place, under
    the cookie the browser already holds. Anything else raises `RuntimeError`
    before anything has changed, instead of closing the sockets and revoking
    the id while the browser stays logged in over HTTP.
    """
    session = await aiohttp_session.get_session(request)
    if not isinstance(inner_policy, SessionIdentityPolicy):
        why = (
            f"the identity policy ({type(inner_policy).__name__}) keeps the identity in a "
            "cookie or a token that only an HTTP response can change"
        )
    elif session.new or session.identity is None:
        why = (
            "the session is kept in its cookie (a cookie storage such as "
            "EncryptedCookieStorage), or no saved session came with the request"
        )
    elif action == "remember" and rotate_session:
        why = (
            "logging in starts a fresh session (session-fixation defence), whose new "
            "cookie only an HTTP response can set"
        )
    else:
        return session
    given = (
        "a websocket"
        if isinstance(response, web.WebSocketResponse)
        else f"a {type(response).__name__} already sent or streamed"
    )
    raise RuntimeError(
        f"{action}() cannot run on {given}: no cookie can change on a "
        f"websocket or on a response already sent, and {why}. Nothing was changed. Call "
        f"{action}() with the response of an HTTP request (e.g. the socket asks its page to "
        "POST to your logout URL); over a websocket it works only with SessionIdentityPolicy "
        "and a server-side storage (RedisStorage, MemcachedStorage)"
        + (", and for remember() with rotate_session=False" if action == "remember" else "")
        + "."
    )


async def close_session_sockets_after(request: web.Request, response: web.StreamResponse) -> None:
    """Capture (and revoke) the current websocket id; close its sockets after `response`."""
    await get_registry(request).schedule_close_all_session(request, response)


async def rotate_session(request: web.Request, response: web.StreamResponse) -> None:
    """Replace the request's session with a fresh, empty one.

    With a server-side storage (RedisStorage, MemcachedStorage: sessions that
    have a storage identity) the old record becomes a tombstone now, through
    the storage's own `save_session`, and expires shortly after: its cookie no
    longer authenticates anyone, and requests still carrying it are told
    apart from unknown ones (they save nothing; their sockets are closed at
    once). Cookie storages keep nothing server-side: the old cookie is simply
    replaced on `response`.
    """
    registry = get_registry(request)
    old = await aiohttp_session.get_session(request)
    old_id = await registry.get_id(request)
    await aiohttp_session.new_session(request)
    if await retire_record(request, response, old, old_id, registry.revoked.ttl):
        # A request that read the old session before this one retired it may
        # still write it back (last writer wins) if its own check ran just
        # before ours: write the tombstone again once `response` is delivered.
        registry.after_response(request, response, functools.partial(save_record_now, request, old))


async def rotate_websocket_id(request: web.Request) -> None:
    """Give the request's session a fresh websocket id."""
    await get_registry(request).new_id(request)
