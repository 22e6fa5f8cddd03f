"""`SessionWSIdentityPolicy`: any identity policy, plus websocket invalidation."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_security import AbstractIdentityPolicy

from .rotation import (
    check_identity,
    close_session_sockets_after,
    rotate_session,
    rotate_websocket_id,
)


class SessionWSIdentityPolicy(AbstractIdentityPolicy):
    """Wraps an aiohttp_security identity policy so that `remember` and `forget`
    also end the session's websockets.

    On both, the current websocket id is captured and its sockets are closed
    with the session-ended code right after `response` reaches the client, and
    the websocket id is rotated. With `rotate_session` (the default) `remember`
    first starts a fresh session (session-fixation defence) and `forget` ends
    with one (so a replayed pre-logout cookie of a server-side storage is
    anonymous); nothing from the old session is carried over.
    """

    def __init__(self, inner_policy: AbstractIdentityPolicy, *, rotate_session: bool = True):
        if isinstance(inner_policy, SessionWSIdentityPolicy):
            raise TypeError(
                "this identity policy is already a SessionWSIdentityPolicy; use it as it is"
            )
        if not isinstance(inner_policy, AbstractIdentityPolicy):
            raise TypeError(
                "SessionWSIdentityPolicy wraps an aiohttp_security identity policy "
                f"(e.g. SessionIdentityPolicy()), got {type(inner_policy).__name__}"
            )
        self.inner_policy = inner_policy
        self.rotate_session = rotate_session

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner_policy!r}, rotate_session={self.rotate_session})"

    async def identify(self, request: web.Request) -> str | None:
        return await self.inner_policy.identify(request)

    async def remember(
        self,
        request: web.Request,
        response: web.StreamResponse,
        identity: str,
        **kwargs: Any,
    ) -> None:
        check_identity(identity)
        await close_session_sockets_after(request, response)
        if self.rotate_session:
            await rotate_session(request, response)
        await self.inner_policy.remember(request, response, identity, **kwargs)
        await rotate_websocket_id(request)

    async def forget(self, request: web.Request, response: web.StreamResponse) -> None:
        await close_session_sockets_after(request, response)
        await self.inner_policy.forget(request, response)
        if self.rotate_session:
            await rotate_session(request, response)
        await rotate_websocket_id(request)
