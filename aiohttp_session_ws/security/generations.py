"""Per-user login generations (opt-in): "log out everywhere" over HTTP too, for every storage.

Each user has a current *generation*, an opaque random token. A login made by
`SessionWSIdentityPolicy(..., generations=...)` records in the session the
generation current at that moment; `identify` answers None for a session whose
recorded generation is no longer the user's current one. "Log out everywhere"
(`schedule_close_all_identity_ws`, `close_all_identity_ws`) starts a new
generation, so every other session of the user is anonymous from then on, also
with cookie storages, which keep nothing on the server to delete.

Generations are random tokens rather than counters so that losing the store
(a restart of the in-memory one, Redis data loss) logs users out instead of
reviving sessions that were logged out everywhere: fail closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, runtime_checkable

import aiohttp_session
from aiohttp import web
from aiohttp_security.api import AUTZ_KEY

from ..options import check_seconds

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")

SESSION_KEY: Final = "aiohttp_session_ws_login"
"""Where a login records [identity, user id, generation] in the aiohttp_session session."""


class GenerationStoreError(RuntimeError):
    """The generation store did not answer: a login, an authenticated request or a
    "log out everywhere" cannot be checked or done now (nothing was changed)."""


@runtime_checkable
class UserGenerations(Protocol):
    """Where each user's current generation is kept (implement it over your database,
    or use `MemoryGenerations` / `RedisGenerations`). User ids are what
    `aiohttp_security.authorized_userid` returns."""

    async def current(self, userid: str) -> str | None:
        """The user's current generation, or None if none was started."""

    async def start(self, userid: str) -> str:
        """The user's current generation, starting one if there is none (at login)."""

    async def bump(self, userid: str) -> str:
        """Start a new generation: every login recorded under an older one stops counting."""


def new_generation() -> str:
    """A fresh, unguessable generation token."""
    return secrets.token_urlsafe(12)


class MemoryGenerations:
    """Generations in this process's memory: for an app served by one process.

    A restart forgets them, which logs every user out (fail closed). A cluster
    needs a shared store: `RedisGenerations`.
    """

    def __init__(self) -> None:
        self._current: dict[str, str] = {}

    async def current(self, userid: str) -> str | None:
        return self._current.get(userid)

    async def start(self, userid: str) -> str:
        return self._current.setdefault(userid, new_generation())

    async def bump(self, userid: str) -> str:
        self._current[userid] = generation = new_generation()
        return generation


class RedisGenerations:
    """Generations in Redis, shared by every process of a cluster.

    One string key per user, `{prefix}<sha256 of the user id>` (key names never
    show user ids), without expiry: deleting one logs that user out everywhere.
    Every call is bounded by `timeout` seconds and raises `GenerationStoreError`
    when Redis fails or does not answer in time, so a login or an authenticated
    request fails rather than skipping the check.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "aiohttp_session_ws:generation:",
        timeout: float = 1.0,
    ) -> None:
        from redis.asyncio import Redis  # the "redis" extra; not needed for MemoryGenerations
        from redis.exceptions import RedisError

        if not isinstance(redis, Redis):  # type: ignore[redundant-expr,unused-ignore]
            raise TypeError(
                f"RedisGenerations needs a redis.asyncio.Redis client, got {type(redis).__name__}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty str, e.g. 'myapp:generation:'")
        self.redis = redis
        self.prefix = prefix
        self.timeout = check_seconds("timeout", timeout)
        self._failures = (RedisError, OSError, asyncio.TimeoutError)

    def key(self, userid: str) -> str:
        """The Redis key holding `userid`'s generation."""
        return self.prefix + hashlib.sha256(userid.encode()).hexdigest()

    async def current(self, userid: str) -> str | None:
        value = await self._bounded(self.redis.get(self.key(userid)))
        return _text(value)

    async def start(self, userid: str) -> str:
        key = self.key(userid)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, new_generation(), nx=True)
            pipe.get(key)
            _, value = await self._bounded(pipe.execute())
        generation = _text(value)
        if generation is None:  # deleted between the two commands of the transaction: impossible
            raise RuntimeError("Redis lost a user's generation while it was being started")
        return generation

    async def bump(self, userid: str) -> str:
        generation = new_generation()
        await self._bounded(self.redis.set(self.key(userid), generation))
        return generation

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except self._failures as exc:
            raise GenerationStoreError(
                f"the login generations in Redis did not answer within {self.timeout}s "
                f"({type(exc).__name__}); logins, authenticated requests and 'log out "
                "everywhere' need them: retry once Redis answers"
            ) from exc


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def record_login(request: web.Request, identity: str, generations: UserGenerations) -> None:
    """At `remember`: record in the session the generation current for the user now.

    The user id comes from the app's authorization policy (as `authorized_userid`
    would give it); an identity it does not authorize records no user, so the
    session is never taken as logged in.
    """
    autz = request.config_dict.get(AUTZ_KEY)
    userid = await autz.authorized_userid(identity) if autz is not None else None
    generation = await generations.start(userid) if isinstance(userid, str) and userid else None
    session = await aiohttp_session.get_session(request)
    session[SESSION_KEY] = [identity, userid, generation]


async def login_is_current(
    request: web.Request, identity: str, generations: UserGenerations
) -> bool:
    """At `identify`: True while the session's login of `identity` is of the user's
    current generation (False for no record, a record of another identity, or a
    generation superseded by "log out everywhere")."""
    session = await aiohttp_session.get_session(request)
    record = session.get(SESSION_KEY)
    if not (isinstance(record, list) and len(record) == 3):
        return False
    recorded_identity, userid, generation = record
    if recorded_identity != identity or not isinstance(userid, str) or not userid:
        return False
    if not isinstance(generation, str):
        return False
    current = await generations.current(userid)
    return current is not None and secrets.compare_digest(current.encode(), generation.encode())


async def forget_login(request: web.Request) -> None:
    """At `forget`: drop the session's login record."""
    session = await aiohttp_session.get_session(request)
    session.pop(SESSION_KEY, None)


def check_generations(generations: object) -> UserGenerations | None:
    """Return `generations` if it can serve as a store (or None), else raise TypeError."""
    if generations is None or isinstance(generations, UserGenerations):
        return generations
    raise TypeError(
        "generations must provide async current(userid), start(userid) and bump(userid), "
        "e.g. MemoryGenerations() for one process or RedisGenerations(redis) for a cluster; "
        f"got {type(generations).__name__}"
    )
