"""Per-user targeting: sockets are indexed by the authorized user id too."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import aiohttp_security
from aiohttp import web
from aiohttp_security.api import IDENTITY_KEY

from ..app import REGISTRY_KEY, get_registry
from ..ids import fingerprint
from .policy import SessionWSIdentityPolicy

logger = logging.getLogger("aiohttp_session_ws.security")

IDENTITY_TAG = "identity"


def identity_key(userid: str) -> tuple[str, str]:
    """The registry key under which a user's sockets are indexed."""
    if not userid or not isinstance(userid, str):
        # Name the type only: the value may be a real user id, and errors reach logs.
        got = "an empty str" if userid == "" else f"a value of type {type(userid).__name__}"
        raise ValueError(
            f"the identity must be a non-empty str (the user id from authorized_userid), got {got}"
        )
    return (IDENTITY_TAG, userid)


async def identity_keys(request: web.Request) -> tuple[Hashable, ...]:
    """Key provider: the connecting user's identity key, if aiohttp_security knows one.

    Anonymous (None or "") gives no key. If the lookup raises (an expired JWT, a
    user store that is down) or returns something other than a str, the socket
    cannot be tied to its user, so the error propagates and `session_ws` refuses
    the socket with 1013 (Try Again Later) instead of serving it unindexed, out
    of reach of "log out everywhere".
    """
    if IDENTITY_KEY not in request.config_dict:
        return ()
    userid = await aiohttp_security.authorized_userid(request)
    if userid is None or userid == "":
        return ()
    if not isinstance(userid, str):
        raise TypeError(
            f"authorized_userid returned a {type(userid).__name__}; the security layer "
            "indexes sockets by str user ids: return str(user_id) from the "
            "authorization policy's authorized_userid"
        )
    return (identity_key(userid),)


async def schedule_close_all_identity_ws(
    request: web.Request, response: web.StreamResponse, identity: str | None = None
) -> str | None:
    """Close every socket of a user, in every session, right after `response` is delivered.

    `identity` is the user id (as `aiohttp_security.authorized_userid` returns
    it); None means the current user, looked up now, so call this before
    `forget`. Returns the targeted user id, or None if the current user is
    anonymous (nothing is scheduled). The user is revoked within the closed
    sockets' sessions. With login generations on (`generations=`), the user's
    generation is bumped now, before the response: every session of the user
    is anonymous over HTTP from then on. Errors of the generation store
    propagate, and then nothing is scheduled.
    """
    if identity is None:
        identity = await aiohttp_security.authorized_userid(request)
        if identity is None:
            return None
    key = identity_key(identity)
    registry = get_registry(request)
    await _bump_generation(request.config_dict, identity)
    logger.debug("closing the websockets of user %s after the response", fingerprint(identity))
    registry.after_response(request, response, lambda: registry.close_all_key(key))
    return identity


async def close_all_identity_ws(app: web.Application, identity: str) -> int:
    """Close every socket of user `identity` now (e.g. from a background job after a
    password change or a ban), revoking their websocket ids. With login
    generations on, the user's generation is bumped first: every session of the
    user is logged out over HTTP too.

    Returns the count `registry.close_all_key` reports: the sockets this
    process closed, for the in-memory registry.
    """
    key = identity_key(identity)
    registry = app.get(REGISTRY_KEY)
    if registry is None:
        raise RuntimeError(
            "aiohttp_session_ws is not set up on this application: pass the app on which "
            "aiohttp_session_ws.security.setup (or aiohttp_session_ws.setup) was called"
        )
    await _bump_generation(app, identity)
    return await registry.close_all_key(key)


async def _bump_generation(config: Mapping[Any, Any], userid: str) -> None:
    """Start a new login generation for `userid` if the app's policy keeps generations.

    Bumped before the sockets are closed: a handshake that looks the user up
    after the bump is anonymous, and one that looked it up before began before
    the key's close, so the close sequence refuses it.
    """
    policy = config.get(IDENTITY_KEY)
    if isinstance(policy, SessionWSIdentityPolicy) and policy.generations is not None:
        await policy.generations.bump(userid)
