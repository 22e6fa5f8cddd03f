"""A small app for the aiohttp_security tests, in each policy and set-up style."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp_security
import aiohttp_session
import jwt
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from aiohttp_security import (
    AbstractAuthorizationPolicy,
    AbstractIdentityPolicy,
    CookiesIdentityPolicy,
    JWTIdentityPolicy,
    SessionIdentityPolicy,
)
from aiohttp_session.cookie_storage import EncryptedCookieStorage

import aiohttp_session_ws
from aiohttp_session_ws import SessionWSRegistry, session_ws, session_ws_middleware
from aiohttp_session_ws import security as asws_security
from aiohttp_session_ws.security import (
    SessionWSIdentityPolicy,
    UserGenerations,
    schedule_close_all_identity_ws,
)

POLICIES = ("session-cookie", "session-redis", "cookies", "jwt")
STYLES = ("wrapped", "dropin", "setup")
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
COOKIE_KEY = base64.urlsafe_b64decode(base64.urlsafe_b64encode(b"k" * 32))
USERS = frozenset({"alice", "bob", "carol"})

Remember = Callable[..., Awaitable[None]]
Forget = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


class Users(AbstractAuthorizationPolicy):
    """Known users are authorized; everyone may do anything."""

    async def authorized_userid(self, identity: str) -> str | None:
        return identity if identity in USERS else None

    async def permits(self, identity: str | None, permission: Any, context: Any = None) -> bool:
        return identity is not None


def make_policy(policy: str) -> AbstractIdentityPolicy:
    if policy.startswith("session-"):
        return SessionIdentityPolicy()
    if policy == "cookies":
        return CookiesIdentityPolicy()
    if policy == "jwt":
        return JWTIdentityPolicy(JWT_SECRET)
    raise ValueError(policy)


async def current_user(request: web.Request) -> str | None:
    try:
        return await aiohttp_security.authorized_userid(request)
    except Exception:  # a bad JWT: anonymous for these tests
        return None


def make_app(
    policy: str,
    style: str,
    storage: aiohttp_session.AbstractStorage | None = None,
    *,
    rotate_session: bool = True,
    registry: SessionWSRegistry | None = None,
    generations: UserGenerations | None = None,
    users: AbstractAuthorizationPolicy | None = None,
) -> web.Application:
    """The test app: /whoami, /login, /logout, /logout-everywhere, /ws.

    `generations` turns on login generations (styles "wrapped" and "setup");
    `users` replaces the authorization policy (e.g. a slow one).
    """
    storage = storage or EncryptedCookieStorage(COOKIE_KEY)
    registry = registry if registry is not None else SessionWSRegistry()  # an empty one is falsy
    users = users or Users()
    identity_policy = make_policy(policy)
    app = web.Application(
        middlewares=[aiohttp_session.session_middleware(storage), session_ws_middleware]
    )
    remember: Remember = aiohttp_security.remember
    forget: Forget = aiohttp_security.forget
    if style == "wrapped":
        wrapped = SessionWSIdentityPolicy(
            identity_policy, rotate_session=rotate_session, generations=generations
        )
        aiohttp_security.setup(app, wrapped, users)
        aiohttp_session_ws.setup(app, registry)
    elif style in ("dropin", "both"):  # both: a wrapped policy, and the drop-ins too
        if style == "both":
            identity_policy = SessionWSIdentityPolicy(identity_policy, generations=generations)
        aiohttp_security.setup(app, identity_policy, users)
        aiohttp_session_ws.setup(app, registry)
        remember = functools.partial(asws_security.remember, rotate_session=rotate_session)
        forget = functools.partial(asws_security.forget, rotate_session=rotate_session)
    elif style == "setup":
        if not rotate_session:
            identity_policy = SessionWSIdentityPolicy(
                identity_policy, rotate_session=False, generations=generations
            )
        asws_security.setup(app, identity_policy, users, registry, generations=generations)
    else:
        raise ValueError(style)

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"user": await current_user(request)})

    async def login(request: web.Request) -> web.Response:
        user = (await request.json())["user"]
        token = jwt.encode({"login": user}, JWT_SECRET) if isinstance(user, str) else None
        response = web.json_response({"token": token})
        try:
            await remember(request, response, user)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return response

    async def logout(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        await forget(request, response)
        return response

    async def logout_everywhere(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        target = await schedule_close_all_identity_ws(request, response)
        await forget(request, response)
        response.text = json.dumps({"user": target})
        return response

    async def login_redirect(request: web.Request) -> web.Response:
        # the aiohttp_security examples' pattern: remember/forget on a raised redirect
        redirect = web.HTTPFound("/whoami")
        await remember(request, redirect, (await request.post())["user"])
        raise redirect

    async def logout_redirect(request: web.Request) -> web.Response:
        redirect = web.HTTPFound("/whoami")
        await forget(request, redirect)
        raise redirect

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        async with session_ws(request) as ws:
            if not ws.closed:
                await ws.send_json({"user": await current_user(request)})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str("pong" if msg.data == "ping" else msg.data)
        return ws

    app.router.add_get("/whoami", whoami)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/logout-everywhere", logout_everywhere)
    app.router.add_post("/login-redirect", login_redirect)
    app.router.add_post("/logout-redirect", logout_redirect)
    app.router.add_get("/ws", ws_handler)
    return app


class Browser:
    """One client session (its own cookie jar, and a JWT when the policy is jwt)."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def cookie(self, name: str = "AIOHTTP_SESSION") -> str | None:
        morsel = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/")).get(name)
        return None if morsel is None else morsel.value

    async def whoami(self) -> str | None:
        async with self.client.get("/whoami", headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            user: str | None = (await resp.json())["user"]
            return user

    async def login(self, user: object, *, status: int = 200) -> dict[str, Any]:
        async with self.client.post("/login", json={"user": user}, headers=self.headers) as resp:
            assert resp.status == status, await resp.text()
            body: dict[str, Any] = await resp.json()
        if status == 200:
            self.token = body["token"]
        return body

    async def logout(self, path: str = "/logout") -> dict[str, Any]:
        async with self.client.post(path, headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = await resp.json()
        self.token = None
        return body

    async def ws(self) -> tuple[Any, str | None]:
        """Open /ws; return the socket and the user the server saw."""
        ws = await self.client.ws_connect("/ws", headers=self.headers)
        hello = await ws.receive_json(timeout=5)
        return ws, hello["user"]


Start = Callable[[web.Application], Awaitable[Callable[[], Awaitable[Browser]]]]


@pytest.fixture(name="redis_client")
async def redis_client_fixture(redis_url: str) -> AsyncIterator[Any]:
    """A redis.asyncio client on the test run's private server."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(name="storage")
async def storage_fixture(policy: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The session storage for `policy` (RedisStorage for session-redis, else cookies)."""
    if policy != "session-redis":
        yield EncryptedCookieStorage(COOKIE_KEY)
        return
    import redis.asyncio
    from aiohttp_session.redis_storage import RedisStorage

    client = redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisStorage(client)
    await client.aclose()


@pytest.fixture(name="start")
def start_fixture(aiohttp_server: Any, aiohttp_client: Any) -> Start:
    """Serve an app; return a factory of browsers (clients with their own cookie jars)."""

    async def serve(app: web.Application) -> Callable[[], Awaitable[Browser]]:
        server = await aiohttp_server(app)

        async def browser() -> Browser:
            client = await aiohttp_client(server, cookie_jar=aiohttp.CookieJar(unsafe=True))
            return Browser(client)

        return browser

    return serve


async def expect_closed(ws: aiohttp.ClientWebSocketResponse, code: int = 4001) -> None:
    """The server closed `ws` cleanly with `code` (by default SESSION_ENDED_CODE)."""
    msg = await ws.receive(timeout=5)
    assert msg.type == WSMsgType.CLOSE, msg
    assert (ws.close_code, msg.extra) == (code, "session ended")


async def expect_open(ws: aiohttp.ClientWebSocketResponse) -> None:
    """`ws` is still served: a ping gets its pong."""
    await ws.send_str("ping")
    msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.TEXT, "pong"), msg
