"""`make_app(settings)`: sessions, aiohttp_security, the websocket registry, routes."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web
from aiohttp_security import SessionIdentityPolicy
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from redis.asyncio import Redis

import aiohttp_session_ws.security
from aiohttp_session_ws import SessionWSRegistry, add_client_route, session_ws_middleware
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from aiohttp_session_ws.security import MemoryGenerations, RedisGenerations, UserGenerations

from . import live, pages
from .keys import CLIENT_URL_KEY, SETTINGS_KEY, THROTTLE_KEY, USERS_KEY
from .passwords import Users
from .policy import DemoAuthorizationPolicy
from .settings import Settings
from .throttle import LoginThrottle
from .throttle import make_storage as make_throttle_storage

HERE = Path(__file__).parent
COOKIE_NAME = "DEMO_AUTH_SESSION"
SESSION_MAX_AGE = 8 * 3600  # cookie sessions cannot be revoked: let them expire
REDIS_CHANNEL = "demo_auth"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def favicon(request: web.Request) -> web.FileResponse:
    """GET /favicon.ico: browsers ask for it on every page; answer instead of 404."""
    return web.FileResponse(HERE / "static" / "favicon.svg")


def make_storage(settings: Settings, redis: Redis | None) -> aiohttp_session.AbstractStorage:
    """RedisStorage in cluster mode, else EncryptedCookieStorage; hardened cookie flags."""
    flags = {
        "cookie_name": COOKIE_NAME,
        "httponly": True,
        "samesite": "Lax",
        "secure": not settings.local,  # plain http is acceptable on loopback only
        "max_age": SESSION_MAX_AGE,
    }
    if redis is not None:
        return RedisStorage(redis, **flags)  # type: ignore[arg-type]
    return EncryptedCookieStorage(settings.secret_key, **flags)  # type: ignore[arg-type]


def make_app(settings: Settings | None = None, users: Users | None = None) -> web.Application:
    """The demo application. With `settings.redis_url`, sessions, closes and revocations
    are shared through Redis, so several processes act as one cluster."""
    settings = settings or Settings()
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(make_storage(settings, redis)),
            session_ws_middleware,  # after the session middleware
        ]
    )
    origins = settings.allowed_origins()
    registry: SessionWSRegistry
    generations: UserGenerations
    if redis is None:
        registry = SessionWSRegistry(allowed_origins=origins)
        generations = MemoryGenerations()
    else:
        registry = RedisSessionWSRegistry(redis, channel=REDIS_CHANNEL, allowed_origins=origins)
        generations = RedisGenerations(redis, prefix=f"{REDIS_CHANNEL}:generation:")
    app[SETTINGS_KEY] = settings
    app[USERS_KEY] = users or Users()
    app[THROTTLE_KEY] = LoginThrottle(
        make_throttle_storage(settings.redis_url),
        settings.login_attempts_per_address,
        settings.login_failures_per_account,
    )
    policy = DemoAuthorizationPolicy(app[USERS_KEY])
    # Wraps SessionIdentityPolicy: plain aiohttp_security.remember/forget now also
    # close the session's sockets and rotate the session and its websocket id; with
    # generations, "log out everywhere" logs every other session out over HTTP too.
    aiohttp_session_ws.security.setup(
        app, SessionIdentityPolicy(), policy, registry, generations=generations
    )
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/", pages.home)
    app.router.add_get("/login", pages.login_form)
    app.router.add_post("/login", pages.login)
    app.router.add_post("/logout", pages.logout)
    app.router.add_post("/logout-everywhere", pages.logout_everywhere)
    app.router.add_get("/api/me", pages.api_me)
    app.router.add_get("/ws", live.websocket)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static", HERE / "static")
    app[CLIENT_URL_KEY] = add_client_route(app)  # the library's browser client
    if redis is not None:

        async def close_redis(app: web.Application) -> None:
            await redis.aclose()  # after the registry's own cleanup has stopped it

        app.on_cleanup.append(close_redis)
    return app
