"""`SessionWSIdentityPolicy`: any identity policy, plus websocket invalidation."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal

import aiohttp_session
from aiohttp import web
from aiohttp_security import AbstractIdentityPolicy

from ..app import get_registry
from ..options import check_flag
from ..stale import save_record_now
from .generations import (
    UserGenerations,
    check_generations,
    forget_login,
    login_is_current,
    record_login,
)
from .rotation import (
    carries_cookies,
    check_identity,
    close_session_sockets_after,
    rotate_session,
    rotate_websocket_id,
    session_to_change_in_place,
)


class SessionWSIdentityPolicy(AbstractIdentityPolicy):
    """Wraps an aiohttp_security identity policy so that `remember` and `forget`
    also end the session's websockets.

    On both, the current websocket id is captured and its sockets are closed
    with the session-ended code right after `response` reaches the client, and
    the websocket id is rotated. With `rotate_session` (the default) `remember`
    first starts a fresh session (session-fixation defence) and `forget` ends
    with one (so a replayed pre-logout cookie of a server-side storage is
    anonymous); nothing from the old session is carried over. Without rotation,
    a server-side storage keeps the pre-login session id valid after login: the
    session-fixation defence is off.

    With `generations` (a `UserGenerations` store, e.g. `MemoryGenerations()`),
    `remember` records the user's current generation in the session and
    `identify` answers None once "log out everywhere" has started a new one:
    every other session of the user is then anonymous over HTTP too.

    Given a response that cannot carry a cookie (`forget(request, ws)` inside a
    socket handler), they change the server-side record in place where that
    really logs in or out: `SessionIdentityPolicy` over a server-side storage
    (RedisStorage, MemcachedStorage); `forget` then empties the record (with
    rotation) and `remember` needs `rotate_session=False`. Anywhere else they
    raise `RuntimeError` before anything has changed.
    """

    def __init__(
        self,
        inner_policy: AbstractIdentityPolicy,
        *,
        rotate_session: bool = True,
        generations: UserGenerations | None = None,
    ):
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
        self.rotate_session = check_flag("rotate_session", rotate_session)
        self.generations = check_generations(generations)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.inner_policy!r}, rotate_session={self.rotate_session}, "
            f"generations={self.generations!r})"
        )

    async def identify(self, request: web.Request) -> str | None:
        identity = await self.inner_policy.identify(request)
        if identity is None or self.generations is None:
            return identity
        return identity if await login_is_current(request, identity, self.generations) else None

    async def remember(
        self,
        request: web.Request,
        response: web.StreamResponse,
        identity: str,
        **kwargs: Any,
    ) -> None:
        check_identity(identity)
        in_place = await self._in_place(request, response, "remember")
        retired = await get_registry(request).get_id(request) if in_place is not None else None
        await close_session_sockets_after(request, response)
        if self.rotate_session:
            await rotate_session(request, response)
        await self.inner_policy.remember(request, response, identity, **kwargs)
        if self.generations is not None:
            await record_login(request, identity, self.generations)
        await rotate_websocket_id(request)
        if in_place is not None:
            await _save_in_place(request, response, in_place, retired)

    async def forget(self, request: web.Request, response: web.StreamResponse) -> None:
        in_place = await self._in_place(request, response, "forget")
        retired = await get_registry(request).get_id(request) if in_place is not None else None
        await close_session_sockets_after(request, response)
        await self.inner_policy.forget(request, response)
        if self.generations is not None:
            await forget_login(request)
        if in_place is not None and self.rotate_session:
            # No new cookie can reach the browser: empty its record instead, so
            # its cookie names an anonymous session (nothing is refused), under a
            # new websocket id.
            in_place.invalidate()
        elif self.rotate_session:
            await rotate_session(request, response)
        await rotate_websocket_id(request)
        if in_place is not None:
            await _save_in_place(request, response, in_place, retired)

    async def _in_place(
        self,
        request: web.Request,
        response: web.StreamResponse,
        action: Literal["remember", "forget"],
    ) -> aiohttp_session.Session | None:
        """None for a response that carries cookies; else the server-side session to
        change in place (or `RuntimeError`, raised before anything changed)."""
        if carries_cookies(response):
            return None
        return await session_to_change_in_place(
            request, response, self.inner_policy, action, rotate_session=self.rotate_session
        )


async def _save_in_place(
    request: web.Request,
    response: web.StreamResponse,
    session: aiohttp_session.Session,
    retired: Hashable | None,
) -> None:
    """Write a record changed in place, and link its new websocket id to `retired`
    (the one it had) as a login or logout over HTTP does, so a login or logout
    sent later with an older cookie of the browser still reaches it."""
    await save_record_now(request, session)
    registry = get_registry(request)
    successor = await registry.get_id(request)
    if retired is not None and successor != retired:
        await registry.supersede(request, response, retired, successor)
