"""Drop-in `remember`/`forget`, and the one-call `setup`."""

from __future__ import annotations

from typing import Any

import aiohttp_security
from aiohttp import web
from aiohttp_security import AbstractAuthorizationPolicy, AbstractIdentityPolicy
from aiohttp_security.api import IDENTITY_KEY

from .. import app as core_app
from ..registry import SessionWSRegistry
from .policy import SessionWSIdentityPolicy


def _unwrapped_policy(request: web.Request) -> AbstractIdentityPolicy | None:
    """The app's identity policy if it is set and not already wrapped."""
    policy = request.config_dict.get(IDENTITY_KEY)
    if policy is None or isinstance(policy, SessionWSIdentityPolicy):
        return None
    return policy


async def remember(
    request: web.Request, response: web.StreamResponse, identity: str, **kwargs: Any
) -> None:
    """`aiohttp_security.remember`, also closing the session's websockets after
    `response` and rotating the session and websocket ids.

    With a `SessionWSIdentityPolicy` installed the policy does this already, so
    this only calls `aiohttp_security.remember`.
    """
    policy = _unwrapped_policy(request)
    if policy is None:  # wrapped, or not set up (aiohttp_security says so)
        await aiohttp_security.remember(request, response, identity, **kwargs)
        return
    await SessionWSIdentityPolicy(policy).remember(request, response, identity, **kwargs)


async def forget(request: web.Request, response: web.StreamResponse) -> None:
    """`aiohttp_security.forget`, also closing the session's websockets after
    `response` and starting a fresh session with a fresh websocket id."""
    policy = _unwrapped_policy(request)
    if policy is None:
        await aiohttp_security.forget(request, response)
        return
    await SessionWSIdentityPolicy(policy).forget(request, response)


def setup(
    app: web.Application,
    identity_policy: AbstractIdentityPolicy,
    autz_policy: AbstractAuthorizationPolicy,
    registry: SessionWSRegistry | None = None,
) -> SessionWSIdentityPolicy:
    """Set up aiohttp_security with the wrapped `identity_policy`, and the websocket
    registry (a new `SessionWSRegistry` if None), in one call.

    aiohttp_session's middleware, then `session_ws_middleware`, still go in
    `app.middlewares`. Returns the installed policy.
    """
    policy = (
        identity_policy
        if isinstance(identity_policy, SessionWSIdentityPolicy)
        else SessionWSIdentityPolicy(identity_policy)
    )
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
