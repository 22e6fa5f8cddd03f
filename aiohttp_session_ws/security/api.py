"""Drop-in `remember`/`forget`, and the one-call `setup`."""

from __future__ import annotations

from typing import Any

import aiohttp_security
from aiohttp import web
from aiohttp_security import AbstractAuthorizationPolicy, AbstractIdentityPolicy
from aiohttp_security.api import IDENTITY_KEY

from .. import app as core_app
from ..registry import SessionWSRegistry
from .generations import UserGenerations
from .policy import SessionWSIdentityPolicy


def _unwrapped_policy(request: web.Request) -> AbstractIdentityPolicy | None:
    """The app's identity policy if it is set and not already wrapped."""
    policy = request.config_dict.get(IDENTITY_KEY)
    if policy is None or isinstance(policy, SessionWSIdentityPolicy):
        return None
    return policy


async def remember(
    request: web.Request,
    response: web.StreamResponse,
    identity: str,
    *,
    rotate_session: bool = True,
    **kwargs: Any,
) -> None:
    """`aiohttp_security.remember`, also closing the session's websockets after
    `response` and rotating the websocket id and (unless `rotate_session` is
    False) the session. `kwargs` go to the identity policy.

    With a `SessionWSIdentityPolicy` installed the policy does this already
    (with its own `rotate_session`), so this only calls aiohttp_security's.
    `rotate_session=False` with a server-side storage switches the
    session-fixation defence off (the pre-login session id stays valid). Given a
    websocket, it logs in in place or raises `RuntimeError` first (see
    `SessionWSIdentityPolicy`).
    """
    policy = _unwrapped_policy(request)
    if policy is None:  # wrapped, or not set up (aiohttp_security says so)
        await aiohttp_security.remember(request, response, identity, **kwargs)
        return
    wrapped = SessionWSIdentityPolicy(policy, rotate_session=rotate_session)
    await wrapped.remember(request, response, identity, **kwargs)


async def forget(
    request: web.Request, response: web.StreamResponse, *, rotate_session: bool = True
) -> None:
    """`aiohttp_security.forget`, also closing the session's websockets after
    `response`, rotating the websocket id and (unless `rotate_session` is False)
    replacing the session with a fresh one. Given a websocket, it logs out in
    place or raises `RuntimeError` first (see `SessionWSIdentityPolicy`)."""
    policy = _unwrapped_policy(request)
    if policy is None:
        await aiohttp_security.forget(request, response)
        return
    await SessionWSIdentityPolicy(policy, rotate_session=rotate_session).forget(request, response)


def setup(
    app: web.Application,
    identity_policy: AbstractIdentityPolicy,
    autz_policy: AbstractAuthorizationPolicy,
    registry: SessionWSRegistry | None = None,
    *,
    generations: UserGenerations | None = None,
) -> SessionWSIdentityPolicy:
    """Set up aiohttp_security with the wrapped `identity_policy`, and the websocket
    registry (a new `SessionWSRegistry` if None), in one call.

    `generations` (e.g. `MemoryGenerations()`, or `RedisGenerations(redis)` in a
    cluster) turns on per-user login generations: "log out everywhere" then logs
    the user's other sessions out over HTTP too. aiohttp_session's middleware,
    then `session_ws_middleware`, still go in `app.middlewares`. Returns the
    installed policy.
    """
    if isinstance(identity_policy, SessionWSIdentityPolicy):
        if generations is not None and generations is not identity_policy.generations:
            raise ValueError(
                "the identity policy is already wrapped: pass generations= to "
                "SessionWSIdentityPolicy(...) or to setup(), not both"
            )
        policy = identity_policy
    else:
        policy = SessionWSIdentityPolicy(identity_policy, generations=generations)
    existing = app.get(core_app.REGISTRY_KEY)
    if existing is not None and registry is not None and registry is not existing:
        raise ValueError(
            "this app already has a websocket registry; call setup() without registry= "
            "to keep it, or set up only one"
        )
    aiohttp_security.setup(app, policy, autz_policy)
    if existing is None:
        core_app.setup(app, registry if registry is not None else SessionWSRegistry())
    return policy
